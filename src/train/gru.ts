/**
 * A GRU over a caption's word vectors, the starter's sequence text encoder (issue #13): the
 * mean of its hidden states over the caption's words is what the text head reads.
 *
 * Mean of the states rather than the last one or their maximum: a one-directional GRU's last
 * state weighs the caption's end most, and Flickr8k captions put the subject first ("a dog
 * runs through the snow"); a mean keeps every word's state in the sum, so the encoder starts
 * near the pooled one it replaces and can only add word order and context to it; a maximum
 * passes gradient to one step per unit. The ONNX graph pools the same way (maskedMean).
 *
 * The weights are stored in ONNX's GRU layout (gate order z, r, h; one direction squeezed):
 *   `${prefix}.W` 3H×D, `${prefix}.R` 3H×H, `${prefix}.B` 6H (input biases, then recurrent),
 * so the pack's text graph feeds them to the GRU op unchanged and a pack's text_model.onnx reads
 * back into the same names. linear_before_reset = 1 (PyTorch's and cuDNN's form):
 *   z = σ(x·Wzᵀ + h·Rzᵀ + bz), r = σ(x·Wrᵀ + h·Rrᵀ + br),
 *   n = tanh(x·Wnᵀ + Wbn + r ⊙ (h·Rnᵀ + Rbn)),  h' = (1 − z) ⊙ n + z ⊙ h,
 * because then one product h·Rᵀ per step gives all three gates; the other form needs (r ⊙ h)·Rnᵀ,
 * a second product that waits for r.
 *
 * Batched, time-major, on packed sequences (PyTorch's pack_padded_sequence): captions sorted
 * longest first, so at step t the captions still running are a prefix of the batch and step t's
 * rows sit contiguously. The input products x·Wᵀ (all steps at once) and every weight gradient
 * are one matmul each; only h·Rᵀ forward and dGh·R backward are per step.
 */
import { mat, matmul, type Mat } from '../models/mat.js';
import type { Params } from '../models/tensor-file.js';
import { addGrad } from './layers.js';

/** Which caption each sorted row is, how many captions run at each step, where each step's rows start. */
interface Packing {
  order: number[];
  lengths: number[];
  active: number[];
  offsets: number[];
  rows: number;
}

function pack(texts: Int32Array[]): Packing {
  const order = texts.map((_, i) => i).sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
  const steps = texts.length > 0 ? texts[order[0]!]!.length : 0;
  const active: number[] = [];
  const offsets: number[] = [];
  let rows = 0;
  let a = order.length;
  for (let t = 0; t < steps; t++) {
    while (a > 0 && texts[order[a - 1]!]!.length <= t) a--;
    active.push(a);
    offsets.push(rows);
    rows += a;
  }
  return { order, lengths: texts.map((t) => t.length), active, offsets, rows };
}

export interface GruCache {
  texts: Int32Array[];
  p: Packing;
  /** packed rows (step by step, sorted captions within a step) */
  x: Mat;
  hPrev: Float32Array;
  z: Float32Array;
  r: Float32Array;
  n: Float32Array;
  /** h·Rnᵀ + Rbn: what r gates */
  ghn: Float32Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Initial GRU weights: PyTorch's U(−1/√H, 1/√H) for W and R, biases zero. */
export function initGru(params: Params, prefix: string, wordDim: number, hidden: number, rand: () => number): void {
  const k = 1 / Math.sqrt(hidden);
  params.set(`${prefix}.W`, Float32Array.from({ length: 3 * hidden * wordDim }, () => (rand() * 2 - 1) * k));
  params.set(`${prefix}.R`, Float32Array.from({ length: 3 * hidden * hidden }, () => (rand() * 2 - 1) * k));
  params.set(`${prefix}.B`, new Float32Array(6 * hidden));
}

/**
 * The mean GRU state of each text (texts × hidden; an empty text pools to zero) from the word
 * vectors `embed` (rows of wordDim). `keep` returns what gruBackward needs.
 */
export async function gruForward(params: Params, prefix: string, embed: Float32Array, wordDim: number, hidden: number, texts: Int32Array[], keep = false): Promise<{ pooled: Mat; cache?: GruCache }> {
  const D = wordDim;
  const H = hidden;
  const H3 = 3 * H;
  const p = pack(texts);
  const x = mat(p.rows, D);
  p.active.forEach((a, t) => {
    for (let k = 0; k < a; k++) {
      const id = texts[p.order[k]!]![t]!;
      x.data.set(embed.subarray(id * D, (id + 1) * D), (p.offsets[t]! + k) * D);
    }
  });
  const W = mat(H3, D, params.get(`${prefix}.W`)!);
  const R = mat(H3, H, params.get(`${prefix}.R`)!);
  const B = params.get(`${prefix}.B`)!;
  const gx = await matmul(x, W, false, true); // rows × 3H
  const states = new Float32Array(p.rows * H);
  const cache = keep
    ? { hPrev: new Float32Array(p.rows * H), z: new Float32Array(p.rows * H), r: new Float32Array(p.rows * H), n: new Float32Array(p.rows * H), ghn: new Float32Array(p.rows * H) }
    : undefined;
  for (let t = 0; t < p.active.length; t++) {
    const a = p.active[t]!;
    const off = p.offsets[t]!;
    // the first a captions' states after step t − 1: a prefix of that step's rows
    const hp = t === 0 ? new Float32Array(a * H) : states.slice(p.offsets[t - 1]! * H, (p.offsets[t - 1]! + a) * H);
    const gh = t === 0 ? new Float32Array(a * H3) : (await matmul(mat(a, H, hp), R, false, true)).data;
    for (let k = 0; k < a; k++) {
      const row = off + k;
      const gxo = row * H3;
      const gho = k * H3;
      for (let j = 0; j < H; j++) {
        const z = sigmoid(gx.data[gxo + j]! + B[j]! + gh[gho + j]! + B[H3 + j]!);
        const r = sigmoid(gx.data[gxo + H + j]! + B[H + j]! + gh[gho + H + j]! + B[H3 + H + j]!);
        const ghn = gh[gho + 2 * H + j]! + B[H3 + 2 * H + j]!;
        const n = Math.tanh(gx.data[gxo + 2 * H + j]! + B[2 * H + j]! + r * ghn);
        const h = hp[k * H + j]!;
        states[row * H + j] = (1 - z) * n + z * h;
        if (cache) {
          const c = row * H + j;
          cache.hPrev[c] = h;
          cache.z[c] = z;
          cache.r[c] = r;
          cache.n[c] = n;
          cache.ghn[c] = ghn;
        }
      }
    }
  }
  const pooled = mat(texts.length, H);
  p.active.forEach((a, t) => {
    for (let k = 0; k < a; k++) {
      const i = p.order[k]!;
      const o = (p.offsets[t]! + k) * H;
      const len = p.lengths[i]!;
      for (let j = 0; j < H; j++) pooled.data[i * H + j]! += states[o + j]! / len;
    }
  });
  return { pooled, cache: cache ? { texts, p, x, ...cache } : undefined };
}

/** Back-propagation through time: adds the GRU's weight gradients to `grads` and the word vectors' to `dEmbed`. */
export async function gruBackward(params: Params, grads: Params, prefix: string, wordDim: number, hidden: number, cache: GruCache, dPooled: Mat, dEmbed: Float32Array): Promise<void> {
  const D = wordDim;
  const H = hidden;
  const H3 = 3 * H;
  const { p, texts } = cache;
  const R = mat(H3, H, params.get(`${prefix}.R`)!);
  const dGx = new Float32Array(p.rows * H3);
  const dGh = new Float32Array(p.rows * H3);
  // dL/dh of each running caption's state after the step being undone, from the steps after it;
  // rows from a_t on are never written before step t is undone (fewer captions run later), so
  // they hold zero, right for captions that end at step t − 1
  const carry = new Float32Array(texts.length * H);
  for (let t = p.active.length - 1; t >= 0; t--) {
    const a = p.active[t]!;
    const off = p.offsets[t]!;
    for (let k = 0; k < a; k++) {
      const i = p.order[k]!;
      const row = off + k;
      const len = p.lengths[i]!;
      for (let j = 0; j < H; j++) {
        const c = row * H + j;
        const dh = carry[k * H + j]! + dPooled.data[i * H + j]! / len;
        const z = cache.z[c]!;
        const r = cache.r[c]!;
        const n = cache.n[c]!;
        const dan = dh * (1 - z) * (1 - n * n);
        const daz = dh * (cache.hPrev[c]! - n) * z * (1 - z);
        const dar = dan * cache.ghn[c]! * r * (1 - r);
        const g = row * H3;
        dGx[g + j] = daz;
        dGx[g + H + j] = dar;
        dGx[g + 2 * H + j] = dan;
        dGh[g + j] = daz;
        dGh[g + H + j] = dar;
        dGh[g + 2 * H + j] = dan * r;
        carry[k * H + j] = dh * z; // the direct path h' = … + z ⊙ h
      }
    }
    if (t > 0) {
      const dhp = await matmul(mat(a, H3, dGh.slice(off * H3, (off + a) * H3)), R);
      for (let q = 0; q < a * H; q++) carry[q]! += dhp.data[q]!;
    }
  }
  const acc = (name: string, g: Float32Array) => addGrad(grads, name, g);
  const dGxM = mat(p.rows, H3, dGx);
  acc(`${prefix}.W`, (await matmul(dGxM, cache.x, true)).data);
  acc(`${prefix}.R`, (await matmul(mat(p.rows, H3, dGh), mat(p.rows, H, cache.hPrev), true)).data);
  const dB = new Float32Array(2 * H3);
  for (let row = 0; row < p.rows; row++) {
    for (let j = 0; j < H3; j++) {
      dB[j]! += dGx[row * H3 + j]!;
      dB[H3 + j]! += dGh[row * H3 + j]!;
    }
  }
  acc(`${prefix}.B`, dB);
  const dx = await matmul(dGxM, mat(H3, D, params.get(`${prefix}.W`)!));
  p.active.forEach((a, t) => {
    for (let k = 0; k < a; k++) {
      const id = texts[p.order[k]!]![t]!;
      const o = (p.offsets[t]! + k) * D;
      for (let j = 0; j < D; j++) dEmbed[id * D + j]! += dx.data[o + j]!;
    }
  });
}
