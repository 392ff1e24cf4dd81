/** The page's calls to API v1 (the same origin), typed after the server's schemas. */

export interface Stage {
  score: number;
  rank: number;
}

export interface Hit {
  rank: number;
  id: string;
  score: number;
  stage1: Stage;
  stage2?: Stage;
  text?: string;
  metadata: Record<string, string | number | boolean>;
  thumbnailUrl?: string;
  imageUrl?: string;
}

export interface Latency {
  queue: number;
  encode: number;
  stage1: number;
  stage2: number;
  fusion: number;
  total: number;
}

export interface SearchResponse {
  query: string;
  mode: 'stage1' | 'hybrid';
  k: number;
  offset: number;
  results: Hit[];
  latencyMs: Latency;
  fallback?: string;
  cached?: boolean;
  next?: { offset: number };
  explain?: { model: string; reranker?: string; items: number; options: Record<string, unknown> };
}

export type Filter = Record<string, unknown>;

export interface Facet {
  key: string;
  label: string;
  count: number;
  where: Filter;
}

export interface Collection {
  items: number;
  kind: 'images' | 'captions';
  model: string;
  reranker?: string;
  captions: boolean;
  facets: Facet[];
  limits: { maxK: number; maxK1: number; maxOffset: number; maxQueryChars: number; uploadLimitBytes: number; thumbnailSizes: number[] };
}

export interface Options {
  mode: 'stage1' | 'hybrid';
  k: number;
  offset: number;
  where?: Filter;
  /** text queries only */
  expand?: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

async function call<T>(url: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(url, init);
  const body = (await response.json().catch(() => undefined)) as { error?: { code: string; message: string; field?: string } } | undefined;
  if (!response.ok) {
    const e = body?.error;
    throw new ApiError(response.status, e?.code ?? 'HTTP', e?.message ?? `${response.status} ${response.statusText}`, e?.field);
  }
  return body as T;
}

const json = (body: unknown, signal?: AbortSignal): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

function form(image: Blob, o: Options, signal?: AbortSignal): RequestInit {
  const data = new FormData();
  data.set('mode', o.mode);
  data.set('k', String(o.k));
  data.set('offset', String(o.offset));
  data.set('explain', 'true');
  if (o.where) data.set('where', JSON.stringify(o.where));
  data.set('image', image, image instanceof File ? image.name : 'query');
  return { method: 'POST', body: data, signal };
}

export const api = {
  collection: () => call<Collection>('/v1/collection'),
  // sent as an expression: the server parses it as duo search does, so `"a dog" - "grass"` and `2:beach + item:<id>` work here too, and plain text stays plain text
  byText: (text: string, o: Options, signal?: AbortSignal) => call<SearchResponse>('/v1/search', json({ expression: text, ...o, explain: true }, signal)),
  byImage: (image: Blob, o: Options, signal?: AbortSignal) => call<SearchResponse>('/v1/search/image', form(image, o, signal)),
  captions: (image: Blob, o: Options, signal?: AbortSignal) => call<SearchResponse>('/v1/captions/search', form(image, o, signal)),
  similar: (id: string, o: Options, signal?: AbortSignal) => {
    const params = new URLSearchParams({ k: String(o.k), offset: String(o.offset), explain: 'true' });
    if (o.where) params.set('where', JSON.stringify(o.where));
    return call<SearchResponse>(`/v1/items/${encodeURIComponent(id)}/similar?${params}`, { signal });
  },
};
