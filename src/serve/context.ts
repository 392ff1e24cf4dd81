/**
 * What the route plugins share: the indexes served, the limits, the search service, the image
 * files, metrics and readiness. Built once by buildApp (./app.ts) and passed to each plugin.
 */
import type { ImageFiles } from './images.js';
import type { ServeLimits } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { Collection } from './schemas.js';
import type { SearchService, ServedIndex } from './search-service.js';

export interface ServeContext {
  /** the index given by --index: images (text→image, image→image), or captions */
  main: ServedIndex;
  /** a caption index for image→text (--captions) */
  captions?: ServedIndex;
  limits: ServeLimits;
  service: SearchService;
  files: ImageFiles;
  metrics: ServerMetrics;
  collection(): Promise<Collection>;
  /** models warm and the store answering; otherwise why not */
  ready(): Promise<{ ready: true } | { ready: false; why: string }>;
}
