/**
 * Converts the part of a TensorFlow.js graph model that feeds the requested tensors into an
 * ONNX graph for onnxruntime-node (one runtime for every model, multithreaded, and far
 * faster in Node than tfjs-wasm, whose threaded build does not start there). TF is NHWC and
 * ONNX convolutions are NCHW: the input is transposed once and every 4-D tensor after it is
 * NCHW, so weights and axes are remapped rather than activations transposed back and forth.
 * Covers the ops of MobileNet-style CNNs (CenterNet, MobileNetV2/V3); anything else is
 * refused by name.
 */
import { createError } from '../../errors.js';
import { type GraphInit, type NodeInit, type TensorInit } from '../../onnx/writer.js';
import { attrInts, attrString, attrStrings, type TfGraph, type TfNode, type TfWeight } from './tfjs-graph.js';

export interface ConvertOptions {
  /** the graph's Placeholder, fed NHWC */
  input: string;
  inputShape: (number | string)[];
  /** tfjs tensor name → ONNX output name; 4-D outputs come out NCHW */
  outputs: Record<string, string>;
  /** the ONNX value the graph reads (default input_nhwc, declared as the graph input) */
  inputValue?: string;
  /** prefixed to every value this conversion creates, so two converted graphs can share one model */
  prefix?: string;
  /**
   * Keep convolution kernels at the precision the tfjs model stores them: float16 bits as
   * float16 initializers (+ Cast), uint8 codes as uint8 initializers (+ Cast·scale+min). The
   * nodes are constant-folded by onnxruntime when the session is created: the same values at a
   * half or a quarter of the file size.
   */
  sourcePrecision?: boolean;
}

const NHWC_TO_NCHW_AXIS: Record<number, number> = { 0: 0, 1: 2, 2: 3, 3: 1, [-1]: 1 };

const clean = (name: string) => name.replace(/^\^/, '').replace(/:0$/, '');

export function convertTfjsToOnnx(graph: TfGraph, options: ConvertOptions): Omit<GraphInit, 'name' | 'outputs'> & { produced: Map<string, string> } {
  const order = topoOrder(graph, Object.keys(options.outputs));
  const nodes: NodeInit[] = [];
  const initializers: TensorInit[] = [];
  const value = new Map<string, string>(); // tfjs tensor → ONNX value name
  let counter = 0;
  const fresh = (hint: string) => `${options.prefix ?? ''}${hint}__${counter++}`;

  const constant = (name: string, w: TfWeight, shape = w.shape): string => {
    const onnxName = fresh(name);
    initializers.push(
      w.dtype === 'int32'
        ? { name: onnxName, dims: shape, type: 'int64', data: BigInt64Array.from(Array.from(w.data, (x) => BigInt(x))) }
        : { name: onnxName, dims: shape, type: 'float', data: w.data as Float32Array },
    );
    return onnxName;
  };
  const weight = (ref: string, node: TfNode): TfWeight => {
    const w = graph.weights.get(clean(ref));
    if (!w) throw createError('MODEL_UNSUPPORTED', node.name, `input ${ref} is not a constant`);
    return w;
  };
  /** an operand: a produced value, or a constant laid out for NCHW broadcasting */
  const operand = (ref: string, node: TfNode): string => {
    const name = clean(ref);
    const produced = value.get(name);
    if (produced) return produced;
    const w = weight(ref, node);
    // a per-channel vector broadcasts over the last (C) axis in NHWC, over axis 1 in NCHW
    return constant(name, w, w.shape.length === 1 && w.shape[0]! > 1 ? [w.shape[0]!, 1, 1] : w.shape);
  };
  const floatScalar = (v: number) => {
    const name = fresh('scalar');
    initializers.push({ name, dims: [], type: 'float', data: Float32Array.from([v]) });
    return name;
  };
  const emit = (op: string, inputs: string[], attrs?: NodeInit['attrs'], hint = op): string => {
    const out = fresh(hint);
    nodes.push({ op, inputs, outputs: [out], attrs });
    return out;
  };

  for (const name of order) {
    const node = graph.nodes.get(name)!;
    const inputs = (node.input ?? []).filter((i) => !i.startsWith('^'));
    let out: string | undefined;
    switch (node.op) {
      case 'Const':
        continue; // materialised where used, in the layout the user needs
      case 'Placeholder':
        if (name !== options.input) throw createError('MODEL_UNSUPPORTED', name, 'a second input');
        out = emit('Transpose', [options.inputValue ?? 'input_nhwc'], { perm: { ints: [0, 3, 1, 2] } }, 'input');
        break;
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative': {
        const depthwise = node.op.includes('Depthwise');
        const w = weight(inputs[1]!, node);
        const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
        // TF HWIO (or HW,C,multiplier) → ONNX OIHW (or C·mult,1,H,W with group = C)
        const o = depthwise ? cin * cout : cout;
        const i = depthwise ? 1 : cin;
        const stored = options.sourcePrecision ? w.stored : undefined;
        const src = stored?.kind === 'uint8' ? stored.codes : stored?.kind === 'float16' ? stored.bits : (w.data as Float32Array);
        const count = o * i * kh * kw;
        const data = stored?.kind === 'uint8' ? new Uint8Array(count) : stored?.kind === 'float16' ? new Uint16Array(count) : new Float32Array(count);
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let c = 0; c < cin; c++) for (let m = 0; m < cout; m++) {
          const from = ((y * kw + x) * cin + c) * cout + m;
          const to = depthwise ? ((c * cout + m) * kh + y) * kw + x : ((m * cin + c) * kh + y) * kw + x;
          data[to] = src[from]!;
        }
        let wName = fresh(`${name}/W`);
        const dims = [o, i, kh, kw];
        if (stored?.kind === 'uint8') {
          initializers.push({ name: wName, dims, type: 'uint8', data });
          const asFloat = emit('Cast', [wName], { to: { i: 1 } });
          wName = emit('Add', [emit('Mul', [asFloat, floatScalar(stored.scale)]), floatScalar(stored.min)], undefined, `${name}/W`);
        } else if (stored?.kind === 'float16') {
          initializers.push({ name: wName, dims, type: 'float16', data });
          wName = emit('Cast', [wName], { to: { i: 1 } }, `${name}/W`);
        } else initializers.push({ name: wName, dims, type: 'float', data });
        const fused = node.op.startsWith('_Fused') || node.op.startsWith('Fused') ? attrStrings(node.attr?.fused_ops) : [];
        const convInputs = [value.get(clean(inputs[0]!))!, wName];
        if (fused[0] === 'BiasAdd') convInputs.push(constant(`${name}/b`, weight(inputs[2]!, node)));
        else if (fused.length > 0) throw createError('MODEL_UNSUPPORTED', name, `fused ops ${fused.join('+')}`);
        const padding = attrString(node.attr?.padding);
        if (padding !== 'SAME' && padding !== 'VALID') throw createError('MODEL_UNSUPPORTED', name, `padding ${padding}`);
        const strides = attrInts(node.attr?.strides);
        const dilations = attrInts(node.attr?.dilations);
        out = emit('Conv', convInputs, {
          auto_pad: { s: padding === 'SAME' ? 'SAME_UPPER' : 'VALID' },
          strides: { ints: [strides[1] ?? 1, strides[2] ?? 1] },
          dilations: { ints: [dilations[1] ?? 1, dilations[2] ?? 1] },
          group: { i: depthwise ? cin : 1 },
          kernel_shape: { ints: [kh, kw] },
        });
        for (const activation of fused.slice(1)) {
          if (activation === 'Relu') out = emit('Relu', [out]);
          else if (activation === 'Relu6') out = emit('Clip', [out, floatScalar(0), floatScalar(6)]);
          else throw createError('MODEL_UNSUPPORTED', name, `fused activation ${activation}`);
        }
        break;
      }
      case 'Add':
      case 'AddV2':
      case 'Mul':
      case 'Sub':
      case 'RealDiv':
        out = emit({ Add: 'Add', AddV2: 'Add', Mul: 'Mul', Sub: 'Sub', RealDiv: 'Div' }[node.op]!, [operand(inputs[0]!, node), operand(inputs[1]!, node)]);
        break;
      case 'Relu':
      case 'Sigmoid':
      case 'Identity':
        out = emit(node.op, [operand(inputs[0]!, node)]);
        break;
      case 'Relu6':
        out = emit('Clip', [operand(inputs[0]!, node), floatScalar(0), floatScalar(6)]);
        break;
      case 'Mean': {
        const axes = Array.from(weight(inputs[1]!, node).data, (a) => NHWC_TO_NCHW_AXIS[a]!);
        out = emit('ReduceMean', [operand(inputs[0]!, node)], { axes: { ints: axes }, keepdims: { i: node.attr?.keep_dims?.b ? 1 : 0 } });
        break;
      }
      case 'ConcatV2': {
        const axis = NHWC_TO_NCHW_AXIS[weight(inputs[inputs.length - 1]!, node).data[0]!]!;
        out = emit('Concat', inputs.slice(0, -1).map((i) => operand(i, node)), { axis: { i: axis } });
        break;
      }
      case 'ResizeBilinear': {
        const x = operand(inputs[0]!, node);
        const hw = Array.from(weight(inputs[1]!, node).data);
        const alignCorners = node.attr?.align_corners?.b === true;
        const halfPixel = node.attr?.half_pixel_centers?.b === true;
        const shape = emit('Shape', [x]);
        const nc = emit('Slice', [shape, constant('start', { dtype: 'int32', shape: [1], data: Int32Array.from([0]) }), constant('end', { dtype: 'int32', shape: [1], data: Int32Array.from([2]) })]);
        const sizes = emit('Concat', [nc, constant('hw', { dtype: 'int32', shape: [2], data: Int32Array.from(hw) })], { axis: { i: 0 } });
        out = emit('Resize', [x, '', '', sizes], {
          mode: { s: 'linear' },
          coordinate_transformation_mode: { s: alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric' },
        });
        break;
      }
      default:
        throw createError('MODEL_UNSUPPORTED', name, `tfjs op ${node.op} has no ONNX mapping here`);
    }
    value.set(name, out);
  }
  const produced = new Map<string, string>();
  for (const [tf, onnx] of Object.entries(options.outputs)) {
    const v = value.get(tf);
    if (!v) throw createError('MODEL_UNSUPPORTED', tf, 'requested output was not produced');
    nodes.push({ op: 'Identity', inputs: [v], outputs: [onnx] });
    produced.set(tf, onnx);
  }
  return { nodes, initializers, inputs: [{ name: options.inputValue ?? 'input_nhwc', type: 'float', shape: options.inputShape }], produced };
}

/** The nodes the outputs depend on, each after its inputs. */
function topoOrder(graph: TfGraph, outputs: string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (ref: string) => {
    const name = clean(ref);
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw createError('MODEL_UNSUPPORTED', name, 'graph has a cycle');
    const node = graph.nodes.get(name);
    if (!node) throw createError('MODEL_UNSUPPORTED', name, 'referenced but not in the graph');
    state.set(name, 'visiting');
    for (const i of node.input ?? []) if (!i.startsWith('^')) visit(i);
    state.set(name, 'done');
    order.push(name);
  };
  outputs.forEach(visit);
  return order;
}

