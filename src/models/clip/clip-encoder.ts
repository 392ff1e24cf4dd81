/**
 * CLIP and SigLIP through transformers.js (tokenizers, image processors, ONNX sessions).
 * The two differ in ways that silently break retrieval when missed, so they live here:
 * SigLIP was trained on text padded to a fixed 64 tokens with no attention mask, and scores
 * with a sigmoid; CLIP pads to the batch's longest and masks.
 */
import {
  AutoProcessor,
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  RawImage,
  SiglipTextModel,
  SiglipVisionModel,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  type Processor,
  type Tensor,
} from '@huggingface/transformers';
import { loadImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { inBatches, l2normalize, type EncodeOptions, type Encoder, type ImageInput, type Similarity } from '../encoder.js';
import { contentId, explainLoadFailure, readJsonIfPresent, requireFiles, type ModelSource } from '../model-source.js';

export type ClipFamily = 'clip' | 'siglip';

interface FamilySpec {
  textModel: { from_pretrained: typeof PreTrainedModel.from_pretrained };
  visionModel: { from_pretrained: typeof PreTrainedModel.from_pretrained };
  textOutput: string;
  imageOutput: string;
  tokenize: (tokenizer: PreTrainedTokenizer, texts: string[]) => Record<string, Tensor>;
}

const FAMILIES: Record<ClipFamily, FamilySpec> = {
  clip: {
    textModel: CLIPTextModelWithProjection,
    visionModel: CLIPVisionModelWithProjection,
    textOutput: 'text_embeds',
    imageOutput: 'image_embeds',
    tokenize: (tokenizer, texts) => tokenizer(texts, { padding: true, truncation: true }) as Record<string, Tensor>,
  },
  siglip: {
    textModel: SiglipTextModel,
    visionModel: SiglipVisionModel,
    textOutput: 'pooler_output',
    imageOutput: 'pooler_output',
    tokenize: (tokenizer, texts) =>
      tokenizer(texts, { padding: 'max_length', truncation: true, max_length: 64 }) as Record<string, Tensor>,
  },
};

export const CLIP_REQUIRED_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'preprocessor_config.json',
  'onnx/text_model.onnx',
  'onnx/vision_model.onnx',
];

export interface ClipLoadOptions {
  /** ONNX weight variant; fp32 by default because quantised weights move CLIP embeddings */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4';
  textBatchSize?: number;
  imageBatchSize?: number;
}

interface RetrievalSidecar {
  similarity?: 'cosine' | 'sigmoid';
  logitScale?: number;
  logitBias?: number;
}

export class ClipEncoder implements Encoder {
  private constructor(
    readonly id: string,
    readonly dim: number,
    readonly similarity: Similarity,
    private readonly family: FamilySpec,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly processor: Processor,
    private readonly textModel: PreTrainedModel,
    private readonly visionModel: PreTrainedModel,
    private readonly options: ClipLoadOptions,
  ) {}

  readonly normalized = true;

  static async load(source: ModelSource, familyName: ClipFamily, options: ClipLoadOptions = {}): Promise<ClipEncoder> {
    requireFiles(source, CLIP_REQUIRED_FILES);
    const family = FAMILIES[familyName];
    // per call, never transformers.js's global env: another model in the process may allow what this one does not
    const common = { local_files_only: !source.allowRemote };
    const modelOptions = { ...common, dtype: options.dtype ?? 'fp32' } as const;
    try {
      const [tokenizer, processor, textModel, visionModel] = await Promise.all([
        AutoTokenizer.from_pretrained(source.pretrainedPath, common),
        AutoProcessor.from_pretrained(source.pretrainedPath, common),
        family.textModel.from_pretrained(source.pretrainedPath, modelOptions),
        family.visionModel.from_pretrained(source.pretrainedPath, modelOptions),
      ]);
      const sidecar = (await readJsonIfPresent<RetrievalSidecar>(source, 'retrieval.json')) ?? {};
      const similarity: Similarity =
        familyName === 'siglip'
          ? { kind: 'sigmoid', logitScale: sidecar.logitScale, logitBias: sidecar.logitBias }
          : { kind: 'cosine' };
      const id = await contentId(source, CLIP_REQUIRED_FILES);
      const encoder = new ClipEncoder(id, 0, similarity, family, tokenizer, processor, textModel, visionModel, options);
      const [probe] = await encoder.encodeTexts(['a photo']);
      return Object.assign(encoder, { dim: probe!.length }) as ClipEncoder;
    } catch (error) {
      throw explainLoadFailure(source, error);
    }
  }

  async encodeTexts(texts: string[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return inBatches(
      texts,
      options.batchSize ?? this.options.textBatchSize ?? 64,
      async (batch) => {
        const inputs = this.family.tokenize(this.tokenizer, batch);
        const output = (await this.textModel(inputs)) as Record<string, Tensor>;
        return this.rows(output, this.family.textOutput, batch.length);
      },
      options,
    );
  }

  async encodeImages(images: ImageInput[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return inBatches(
      images,
      options.batchSize ?? this.options.imageBatchSize ?? 16,
      async (batch) => {
        const decoded = await Promise.all(batch.map((img) => (img instanceof Uint8Array || typeof img === 'string' ? loadImage(img) : img)));
        const raw = decoded.map((d) => new RawImage(d.data, d.width, d.height, 3));
        const inputs = (await this.processor(raw)) as Record<string, Tensor>;
        options.signal?.throwIfAborted();
        const output = (await this.visionModel({ pixel_values: inputs.pixel_values })) as Record<string, Tensor>;
        return this.rows(output, this.family.imageOutput, batch.length);
      },
      options,
    );
  }

  private rows(output: Record<string, Tensor>, name: string, expected: number): Float32Array[] {
    const tensor = output[name];
    if (!tensor) throw createError('MODEL_OUTPUT', this.id, `no output named ${name} (got ${Object.keys(output).join(', ')})`);
    const [n, d] = tensor.dims as [number, number];
    if (tensor.dims.length !== 2 || n !== expected) {
      throw createError('MODEL_OUTPUT', this.id, `${name} has shape [${tensor.dims}], expected [${expected}, dim]`);
    }
    const data = tensor.data as Float32Array;
    return Array.from({ length: n }, (_, i) => l2normalize(data.slice(i * d, (i + 1) * d)));
  }

  async dispose(): Promise<void> {
    await Promise.all([this.textModel.dispose(), this.visionModel.dispose()]);
  }
}
