/** A training checkpoint: parameters and AdamW moments in one tensor file, so a killed run resumes exactly. */
import type { AdamWState } from './adamw.js';
import { loadTensors, saveTensors, type Params } from '../models/tensor-file.js';

export async function saveCheckpoint(path: string, params: Params, adam: AdamWState): Promise<void> {
  const tensors: Params = new Map(params);
  for (const [k, v] of adam.m) tensors.set(`adam.m.${k}`, v);
  for (const [k, v] of adam.v) tensors.set(`adam.v.${k}`, v);
  await saveTensors(path, tensors);
}

/** The parameters and the optimiser state after `step` steps, as saveCheckpoint wrote them. */
export async function loadCheckpoint(path: string, step: number): Promise<{ params: Params; adam: AdamWState }> {
  const params: Params = new Map();
  const adam: AdamWState = { step, m: new Map(), v: new Map() };
  for (const [k, v] of await loadTensors(path)) {
    if (k.startsWith('adam.m.')) adam.m.set(k.slice(7), v);
    else if (k.startsWith('adam.v.')) adam.v.set(k.slice(7), v);
    else params.set(k, v);
  }
  return { params, adam };
}
