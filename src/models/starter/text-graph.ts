/**
 * The starter pack's text graph and the projection-head nodes every exported head uses: written
 * by the pack export (src/train/export-pack.ts), and rebuilt at load time around the weights of
 * a pack's own text_model.onnx when the pack has an open vocabulary (starter-encoder.ts), so the
 * graph is defined once. The open vocabulary's rows are word vectors like the trained ones, so
 * they feed the GRU of a GRU pack the same way they feed the mean.
 */
import type { Params } from '../tensor-file.js';
import { maskedMean } from '../../onnx/graph-parts.js';
import { encodeModel, int64s, type NodeInit, type TensorInit } from '../../onnx/writer.js';
import { floatToHalf } from '../../util/float16.js';
import { dequantizeInt8, quantizeInt8 } from '../../util/int8.js';
import { textHeadSpec, type DualEncoderConfig, type HeadSpec } from './head-spec.js';

/**
 * How a graph stores its weights: float32; or compact, a quarter of the bytes for the big ones:
 * tables of word vectors as int8 rows with a float32 scale each, head matrices as int8 columns
 * with a float32 scale each (one per output unit), both read through DequantizeLinear, and the
 * rest (biases, the GRU's weights) as float16 read through a Cast. onnxruntime computes in
 * float32 either way, on the rounded values.
 */
export interface WeightStorage {
  compact?: boolean;
}

/** How a weight is stored compactly: int8 along an axis (scales per row or per column), or float16. */
type Compact = 'rows' | 'columns' | 'half';
/** The suffix of an int8 weight's scales, by the axis they run along (DequantizeLinear's axis). */
const SCALES = ['.row_scale', '.col_scale'] as const;

/** The weights a graph takes from `params`, as initializers (and the Casts that read float16 ones). */
class Weights {
  readonly initializers: TensorInit[] = [];
  readonly nodes: NodeInit[] = [];
  constructor(
    private readonly params: Params,
    private readonly storage: WeightStorage = {},
  ) {}

  /**
   * Adds the weight `name` of `dims`; returns the name nodes read it by. When the graph is rebuilt
   * at load time the weights come from a pack's text_model.onnx, which may lack one or hold it in
   * another shape (a damaged or foreign file), so that is an error naming the weight rather than
   * an undefined initializer.
   */
  use(name: string, dims: number[], kind: Compact = 'half'): string {
    const data = this.params.get(name);
    if (!data) throw new Error(`no weight ${name}`);
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`weight ${name} holds ${data.length} values, not [${dims.join(', ')}]`);
    if (!this.storage.compact) {
      this.initializers.push({ name, dims, type: 'float', data });
      return name;
    }
    if (kind !== 'half') {
      const axis = kind === 'rows' ? 0 : 1;
      const { codes, scales } = quantizeInt8(data, dims[1]!, axis);
      this.initializers.push({ name, dims, type: 'int8', data: codes }, { name: `${name}${SCALES[axis]}`, dims: [dims[axis]!], type: 'float', data: scales });
      this.nodes.push({ op: 'DequantizeLinear', inputs: [name, `${name}${SCALES[axis]}`], outputs: [`${name}_f32`], attrs: { axis: { i: axis } } });
      return `${name}_f32`;
    }
    this.initializers.push({ name, dims, type: 'float16', data: Uint16Array.from(data, floatToHalf) });
    this.nodes.push({ op: 'Cast', inputs: [name], outputs: [`${name}_f32`], attrs: { to: { i: 1 } } });
    return `${name}_f32`;
  }
}

/**
 * A graph's weights as float32 params from its initializers (onnx/reader.ts): int8 tables times
 * their row scales, as DequantizeLinear computes them, and the scales themselves left out; so
 * a compact pack's text graph can be rebuilt (with an open vocabulary) from its own weights.
 */
export function weightsOf(initializers: Map<string, { dims: number[]; data: Float32Array }>): Params {
  const params: Params = new Map();
  for (const [name, t] of initializers) {
    if (SCALES.some((suffix) => name.endsWith(suffix))) continue;
    const axis = SCALES.findIndex((suffix) => initializers.has(`${name}${suffix}`));
    if (axis < 0) {
      params.set(name, t.data);
      continue;
    }
    const scales = initializers.get(`${name}${SCALES[axis]}`)!.data;
    // a damaged file: an error naming the weight (textSide reports it as MODEL_UNSUPPORTED with the file), not NaN weights
    if (t.dims.length !== 2 || scales.length !== t.dims[axis]) throw new Error(`int8 weight ${name} [${t.dims.join(', ')}] has ${scales.length} scales along axis ${axis}`);
    params.set(name, dequantizeInt8(t.data, scales, t.dims[1]!, axis as 0 | 1));
  }
  return params;
}

export function headGraph(params: Params, prefix: string, spec: HeadSpec, input: string, output: string, storage: WeightStorage = {}): { nodes: NodeInit[]; initializers: TensorInit[] } {
  const w = new Weights(params, storage);
  const nodes: NodeInit[] = [];
  const layer = (name: string, x: string, inDim: number, outDim: number, out: string) => {
    const W = w.use(`${prefix}.${name}.W`, [inDim, outDim], 'columns');
    const b = w.use(`${prefix}.${name}.b`, [outDim]);
    nodes.push({ op: 'MatMul', inputs: [x, W], outputs: [`${out}_mm`] });
    nodes.push({ op: 'Add', inputs: [`${out}_mm`, b], outputs: [out] });
  };
  const last = spec.residual ? `${prefix}_delta` : `${prefix}_raw`;
  if (spec.kind === 'linear') layer('l1', input, spec.inDim, spec.outDim, last);
  else {
    layer('l1', input, spec.inDim, spec.hidden, `${prefix}_z1`);
    nodes.push({ op: 'Relu', inputs: [`${prefix}_z1`], outputs: [`${prefix}_h`] });
    layer('l2', `${prefix}_h`, spec.hidden, spec.outDim, last);
  }
  if (spec.residual) nodes.push({ op: 'Add', inputs: [input, last], outputs: [`${prefix}_raw`] });
  nodes.push({ op: 'LpNormalization', inputs: [`${prefix}_raw`], outputs: [output], attrs: { axis: { i: -1 }, p: { i: 2 } } });
  return { nodes: [...w.nodes, ...nodes], initializers: w.initializers };
}

/**
 * An open vocabulary's rows as the text graph reads them: ids from vocabSize up are words
 * outside the trained vocabulary, whose word vectors are their GloVe rows mapped by a ridge
 * fit, `glove[id − vocabSize]·W + b` (src/train/open-vocab/build-open-vocab.ts).
 */
export interface OpenVocabTable {
  /** rows × gloveDim */
  glove: Float32Array;
  gloveDim: number;
  /** gloveDim × wordDim */
  W: Float32Array;
  b: Float32Array;
}

/**
 * A GRU over the word vectors `tokens` [batch, sequence, wordDim] to its states [batch,
 * sequence, hidden], with ONNX's GRU op rather than unrolled steps: one node for any caption
 * length (an unrolled graph fixes the longest), and sequence_lens (the attention mask's row
 * sums) stops each caption at its own length, as training's packed steps do (src/train/gru.ts;
 * a test checks the two agree). The op's layout attribute (batch first) is not implemented by
 * onnxruntime's CPU kernel, hence the transposes; linear_before_reset = 1 is the form trained.
 * Padding positions come out as zeros and are masked out of the mean anyway.
 */
function gruGraph(params: Params, wordDim: number, hidden: number, tokens: string, states: string, storage: WeightStorage): { nodes: NodeInit[]; initializers: TensorInit[] } {
  const w = new Weights(params, storage);
  const [W, R, B] = [w.use('text.gru.W', [1, 3 * hidden, wordDim]), w.use('text.gru.R', [1, 3 * hidden, hidden]), w.use('text.gru.B', [1, 6 * hidden])];
  return {
    nodes: [
      ...w.nodes,
      { op: 'Transpose', inputs: [tokens], outputs: ['gru_x'], attrs: { perm: { ints: [1, 0, 2] } } },
      { op: 'ReduceSum', inputs: ['attention_mask', 'gru.axis1'], outputs: ['gru_len64'], attrs: { keepdims: { i: 0 } } },
      { op: 'Cast', inputs: ['gru_len64'], outputs: ['gru_len'], attrs: { to: { i: 6 } } }, // int32, as the op requires
      { op: 'GRU', inputs: ['gru_x', W, R, B, 'gru_len'], outputs: ['gru_y'], attrs: { hidden_size: { i: hidden }, linear_before_reset: { i: 1 } } },
      { op: 'Squeeze', inputs: ['gru_y', 'gru.axis1'], outputs: ['gru_y3'] }, // [sequence, 1 direction, batch, hidden]
      { op: 'Transpose', inputs: ['gru_y3'], outputs: [states], attrs: { perm: { ints: [1, 0, 2] } } },
    ],
    initializers: [
      ...w.initializers,
      { name: 'gru.axis1', dims: [1], type: 'int64', data: int64s([1]) },
    ],
  };
}

/**
 * The starter text graph: word ids → word vectors → masked mean → head → L2 norm, or with a GRU
 * text encoder word vectors → GRU → masked mean of its states → head → L2 norm. With an open
 * vocabulary the word vectors of ids ≥ vocabSize come from the mapped GloVe rows instead of
 * the trained table (a Where per token); ids below it take exactly the nodes and weights of the
 * graph without one, so known words embed bit for bit as before.
 */
export function textModelOnnx(params: Params, config: DualEncoderConfig, open?: OpenVocabTable, storage: WeightStorage = {}): Uint8Array {
  const head = headGraph(params, 'text.head', textHeadSpec(config), 'pooled', 'text_embeds', storage);
  const gru = config.textEncoder?.kind === 'gru' ? gruGraph(params, config.wordDim, config.textEncoder.hidden, 'tokens', 'gru_states', storage) : undefined;
  const pooling = maskedMean(gru ? 'gru_states' : 'tokens', 'pooled', { guardEmpty: true });
  const w = new Weights(params, storage);
  const embed = w.use('text.embed', [config.vocabSize, config.wordDim], 'rows');
  const lookup: { nodes: NodeInit[]; initializers: TensorInit[] } = open
    ? {
        nodes: [
          { op: 'Min', inputs: ['input_ids', 'open.last_known'], outputs: ['known_ids'] },
          { op: 'Gather', inputs: [embed, 'known_ids'], outputs: ['known_tokens'] },
          { op: 'Sub', inputs: ['input_ids', 'open.vocab_size'], outputs: ['open_offset'] },
          { op: 'Max', inputs: ['open_offset', 'open.zero'], outputs: ['open_ids'] },
          { op: 'Gather', inputs: ['open.glove', 'open_ids'], outputs: ['open_glove'] },
          { op: 'MatMul', inputs: ['open_glove', 'open.W'], outputs: ['open_mm'] },
          { op: 'Add', inputs: ['open_mm', 'open.b'], outputs: ['open_tokens'] },
          { op: 'Greater', inputs: ['input_ids', 'open.last_known'], outputs: ['is_open'] },
          { op: 'Unsqueeze', inputs: ['is_open', 'open.axis2'], outputs: ['is_open3'] },
          { op: 'Where', inputs: ['is_open3', 'open_tokens', 'known_tokens'], outputs: ['tokens'] },
        ],
        initializers: [
          { name: 'open.last_known', dims: [], type: 'int64', data: int64s([config.vocabSize - 1]) },
          { name: 'open.vocab_size', dims: [], type: 'int64', data: int64s([config.vocabSize]) },
          { name: 'open.zero', dims: [], type: 'int64', data: int64s([0]) },
          { name: 'open.axis2', dims: [1], type: 'int64', data: int64s([2]) },
          { name: 'open.glove', dims: [open.glove.length / open.gloveDim, open.gloveDim], type: 'float', data: open.glove },
          { name: 'open.W', dims: [open.gloveDim, config.wordDim], type: 'float', data: open.W },
          { name: 'open.b', dims: [config.wordDim], type: 'float', data: open.b },
        ],
      }
    : { nodes: [{ op: 'Gather', inputs: [embed, 'input_ids'], outputs: ['tokens'] }], initializers: [] };
  return encodeModel({
    name: 'starter-text',
    nodes: [...w.nodes, ...lookup.nodes, ...(gru?.nodes ?? []), ...pooling.nodes, ...head.nodes],
    initializers: [...w.initializers, ...lookup.initializers, ...(gru?.initializers ?? []), ...pooling.initializers, ...head.initializers],
    inputs: [
      { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
    ],
    outputs: [{ name: 'text_embeds', type: 'float', shape: ['batch', config.embedDim] }],
  });
}
