/**
 * The shapes of the starter dual encoder's projection heads: what training builds and the pack's
 * graphs (text-graph.ts) are written and rebuilt from. They live in models/, not train/, because
 * loading a pack rebuilds its text graph (an open vocabulary) and models/ never imports train/.
 */
export type HeadKind = 'linear' | 'mlp';

export interface HeadSpec {
  kind: HeadKind;
  inDim: number;
  outDim: number;
  hidden: number;
  /** out = x + f(x), with f's last layer starting at zero: the head starts as the identity */
  residual?: boolean;
}

/**
 * What turns a caption's word vectors into the one vector the text head reads: absent, their
 * mean (the first starter packs); `gru`, a GRU over them whose hidden states are averaged
 * (src/train/gru.ts). Absent rather than `pooled` so the configs of earlier runs mean what they said.
 */
export interface TextEncoderSpec {
  kind: 'gru';
  /** the GRU's hidden size: what the text head reads */
  hidden: number;
}

export const TEXT_ENCODERS = ['pooled', 'gru'] as const;
export type TextEncoderKind = (typeof TEXT_ENCODERS)[number];

export interface DualEncoderConfig {
  imageDim: number;
  /** 0: the text side takes dense vectors of textDim (frozen encoder embeddings) instead of word ids */
  vocabSize: number;
  wordDim: number;
  textDim?: number;
  embedDim: number;
  head: HeadKind;
  hidden: number;
  residual?: boolean;
  textEncoder?: TextEncoderSpec;
}

/** The size of the vector the text head reads. */
export function textFeatureDim(c: DualEncoderConfig): number {
  if (c.vocabSize === 0) return c.textDim ?? c.embedDim;
  return c.textEncoder?.kind === 'gru' ? c.textEncoder.hidden : c.wordDim;
}

export const imageHeadSpec = (c: DualEncoderConfig): HeadSpec => ({ kind: c.head, inDim: c.imageDim, outDim: c.embedDim, hidden: c.hidden, residual: c.residual });
export const textHeadSpec = (c: DualEncoderConfig): HeadSpec => ({
  kind: c.head,
  inDim: textFeatureDim(c),
  outDim: c.embedDim,
  hidden: c.hidden,
  residual: c.residual,
});
