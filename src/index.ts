/** Public entry point for programs: re-exports only. */
export { Predictor, type RankedImage } from './predictor.js';
export { loadEncoder, defaultModelPath } from './models/load-encoder.js';
export type { Encoder, ImageInput, Similarity } from './models/encoder.js';
export { ExactIndex } from './index/exact-index.js';
export type { VectorStore, Hit } from './index/vector-store.js';
export { buildIndex } from './index/build-index.js';
export { loadIndex, saveIndex } from './index/index-file.js';
export { SearchEngine, type Query, type EngineHit, type EngineResponse, type SearchOptions } from './search/engine.js';
export { fuse, type FusionMode } from './search/fusion.js';
export { mmr } from './search/mmr.js';
export type { CrossEncoder } from './models/reranker.js';
export { BlipItmReranker } from './models/blip/blip-itm.js';
export { openDataset } from './data/readers/open-dataset.js';
export { evaluateRetrieval } from './eval/retrieval-eval.js';
export { loadImage } from './data/image-loader.js';
export { DuoError, type ErrorCode } from './errors.js';
