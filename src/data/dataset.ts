/**
 * A retrieval dataset: images, and captions that each describe one image. Every reader
 * (Flickr8k, Flickr30k CSV, Karpathy JSON, Hugging Face parquet) returns this shape and
 * passes test/contracts/dataset.contract.ts.
 */
export interface DatasetImage {
  id: string;
  /** a file path, or the encoded bytes when the dataset embeds them (parquet) */
  source: string | Uint8Array;
}

export interface Caption {
  imageId: string;
  text: string;
}

export interface RetrievalDataset {
  name: string;
  split: string;
  images: DatasetImage[];
  captions: Caption[];
}

/** Drops images without captions and captions without images, so metrics are well-defined. */
export function checkDataset(ds: RetrievalDataset, where: string): RetrievalDataset {
  if (ds.images.length === 0) throw new Error(`${where}: split "${ds.split}" has no images`);
  const ids = new Set(ds.images.map((i) => i.id));
  if (ids.size !== ds.images.length) throw new Error(`${where}: duplicate image ids in split "${ds.split}"`);
  const orphan = ds.captions.find((c) => !ids.has(c.imageId));
  if (orphan) throw new Error(`${where}: caption for ${orphan.imageId}, which is not an image of split "${ds.split}"`);
  const captioned = new Set(ds.captions.map((c) => c.imageId));
  const bare = ds.images.find((i) => !captioned.has(i.id));
  if (bare) throw new Error(`${where}: image ${bare.id} of split "${ds.split}" has no caption`);
  return ds;
}
