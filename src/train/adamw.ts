/** AdamW (Loshchilov & Hutter): Adam moments with decoupled weight decay on the names `decay` accepts. */
import type { Params } from '../models/tensor-file.js';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay: number;
  decay?: (name: string) => boolean;
}

export interface AdamWState {
  step: number;
  m: Params;
  v: Params;
}

export function adamwInit(params: Params): AdamWState {
  const zeros = () => new Map([...params].map(([k, v]) => [k, new Float32Array(v.length)]));
  return { step: 0, m: zeros(), v: zeros() };
}

export function adamwStep(params: Params, grads: Params, state: AdamWState, o: AdamWOptions, lr = o.lr): void {
  const b1 = o.beta1 ?? 0.9;
  const b2 = o.beta2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  state.step++;
  const c1 = 1 - b1 ** state.step;
  const c2 = 1 - b2 ** state.step;
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) continue;
    const m = state.m.get(name)!;
    const v = state.v.get(name)!;
    const wd = (o.decay ?? (() => true))(name) ? o.weightDecay : 0;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      p[i] = p[i]! - lr * ((m[i]! / c1) / (Math.sqrt(v[i]! / c2) + eps) + wd * p[i]!);
    }
  }
}
