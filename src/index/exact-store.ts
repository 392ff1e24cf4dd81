/**
 * The index-folder store under its first name: it was exact only, and now also searches with
 * an HNSW graph when the index records one (folder-store.ts). Kept so existing imports work.
 */
export { DEFAULT_COMPACTION, FolderStore as ExactStore, type CompactionPolicy, type OpenOptions, type ScanInfo } from './folder-store.js';
