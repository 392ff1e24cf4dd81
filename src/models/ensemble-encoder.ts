/**
 * Several encoders as one (`--model a,b` or `--model a=0.7,b=0.3`): an item's vector is the
 * members' unit vectors, each scaled by √wᵢ, side by side, so the cosine of two ensemble vectors
 * is Σ wᵢ·cosᵢ (the weights sum to 1, so the vector stays unit length). Any store and the whole
 * engine work on it unchanged, and an index built with an ensemble refuses queries from any
 * other model, the members' own included: its id names every member and weight.
 *
 * "Each normalised": members' cosines live on different scales (CLIP's spread over a
 * collection is a few hundredths, the starter pack's a few tenths), so equal weights favour the
 * wider one. `duo eval --model a,b --ensemble-weights …` measures each member's spread on the
 * evaluation data and reports weights on standardised similarities, with the spec to use
 * (src/eval/ensemble-sweep.ts): choose them on dev.
 */
import { loadImage } from '../data/image-loader.js';
import { createError } from '../errors.js';
import { inBatches, l2normalize, type EncodeOptions, type Encoder, type ImageInput, type TextCoverage } from './encoder.js';

export interface EnsembleMember {
  /** the spec the member was loaded from (a folder or hub id) */
  spec: string;
  encoder: Encoder;
  weight: number;
}

/** `a,b` or `a=0.7,b=0.3` → members' specs and weights (normalised to sum 1); undefined for a single model. */
export function parseEnsembleSpec(spec: string): { spec: string; weight: number }[] | undefined {
  if (!spec.includes(',')) return undefined;
  const parts = spec.split(',').map((p) => p.trim());
  const members = parts.map((part, i) => {
    const at = part.lastIndexOf('=');
    const name = at > 0 ? part.slice(0, at) : part;
    const weight = at > 0 ? Number(part.slice(at + 1)) : 1;
    if (!name) throw createError('BAD_ARGUMENT', '--model', `member ${i + 1} of "${spec}" is empty`);
    if (!(Number.isFinite(weight) && weight > 0)) throw createError('BAD_ARGUMENT', '--model', `member ${i + 1} (${name}): weight "${part.slice(at + 1)}" is not a positive number`);
    return { spec: name, weight };
  });
  const total = members.reduce((a, m) => a + m.weight, 0);
  return members.map((m) => ({ ...m, weight: m.weight / total }));
}

/**
 * One item's vector from its members' vectors: each made unit length and scaled by its √weight
 * (`scales`), side by side, and the whole unit length again. Members that do not normalise are
 * made unit length first, so weights mean what they say; the last step restores unit length when
 * a member returned a zero vector (a text none of whose words it knows). Shared by ensembles of
 * packs and by a starter pack's members (starter-encoder.ts).
 */
export function weightedConcat(vectors: Float32Array[], scales: number[], dim: number): Float32Array {
  const out = new Float32Array(dim);
  let offset = 0;
  vectors.forEach((v, j) => {
    let norm = 0;
    for (let k = 0; k < v.length; k++) norm += v[k]! * v[k]!;
    const scale = scales[j]! / (Math.sqrt(norm) || 1);
    for (let k = 0; k < v.length; k++) out[offset + k] = v[k]! * scale;
    offset += v.length;
  });
  return l2normalize(out);
}

/** The spec that loads these members with these weights again (what an index records). */
export const ensembleSpec = (members: { spec: string; weight: number }[]) => members.map((m) => `${m.spec}=${Number(m.weight.toPrecision(4))}`).join(',');

export class EnsembleEncoder implements Encoder {
  readonly id: string;
  readonly dim: number;
  readonly normalized = true;
  readonly similarity = { kind: 'cosine' as const };
  readonly textCoverage?: (text: string) => TextCoverage;
  private readonly scales: number[];

  /** `owned`: whether dispose() disposes the members (true when the ensemble loaded them) */
  constructor(
    readonly members: EnsembleMember[],
    private readonly owned = true,
  ) {
    if (members.length < 2) throw createError('BAD_ARGUMENT', '--model', 'an ensemble needs two models or more');
    const total = members.reduce((a, m) => a + m.weight, 0);
    this.scales = members.map((m) => Math.sqrt(m.weight / total));
    this.dim = members.reduce((a, m) => a + m.encoder.dim, 0);
    this.id = `ensemble(${members.map((m, i) => `${m.encoder.id}=${Number((this.scales[i]! ** 2).toPrecision(4))}`).join(',')})`;
    // a word is known when any member reads it; a member with an open vocabulary reads every word
    if (members.every((m) => m.encoder.textCoverage)) {
      this.textCoverage = (text) => {
        const known = new Set(members.flatMap((m) => m.encoder.textCoverage!(text).known));
        const all = members[0]!.encoder.textCoverage!(text);
        const words = [...all.known, ...all.unknown];
        for (const m of members.slice(1)) {
          const c = m.encoder.textCoverage!(text);
          for (const w of [...c.known, ...c.unknown]) if (!words.includes(w)) words.push(w);
        }
        return { known: words.filter((w) => known.has(w)), unknown: words.filter((w) => !known.has(w)) };
      };
    }
  }

  encodeTexts(texts: string[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return this.inBatches(texts, options, (batch, signal) => this.combine((e) => e.encodeTexts(batch, { batchSize: batch.length, signal })));
  }

  encodeImages(images: ImageInput[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return this.inBatches(images, options, async (batch, signal) => {
      // decoded once for every member
      const decoded = await Promise.all(batch.map((im) => (typeof im === 'string' || im instanceof Uint8Array ? loadImage(im) : im)));
      return this.combine((e) => e.encodeImages(decoded, { batchSize: decoded.length, signal }));
    });
  }

  /** The ensemble's own batches: progress counts them once (not once per member), and an abort stops between them. */
  private inBatches<T>(items: T[], options: EncodeOptions, run: (batch: T[], signal?: AbortSignal) => Promise<Float32Array[]>): Promise<Float32Array[]> {
    return inBatches(items, options.batchSize ?? 16, (batch) => run(batch, options.signal), options);
  }

  private async combine(run: (e: Encoder) => Promise<Float32Array[]>): Promise<Float32Array[]> {
    const parts: Float32Array[][] = [];
    for (const m of this.members) parts.push(await run(m.encoder));
    return parts[0]!.map((_, i) => weightedConcat(parts.map((p) => p[i]!), this.scales, this.dim));
  }

  async dispose(): Promise<void> {
    if (this.owned) for (const m of this.members) await m.encoder.dispose();
  }
}
