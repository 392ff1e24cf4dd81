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
}

export const imageHeadSpec = (c: DualEncoderConfig): HeadSpec => ({ kind: c.head, inDim: c.imageDim, outDim: c.embedDim, hidden: c.hidden, residual: c.residual });
export const textHeadSpec = (c: DualEncoderConfig): HeadSpec => ({
  kind: c.head,
  inDim: c.vocabSize > 0 ? c.wordDim : (c.textDim ?? c.embedDim),
  outDim: c.embedDim,
  hidden: c.hidden,
  residual: c.residual,
});
