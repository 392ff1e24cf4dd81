/**
 * The tfjs → ONNX converter on a small generated graph of the ops MobileNets use, read the
 * way nsfwjs ships models (UMD modules: the model JSON and base64 weight shards), checked
 * against a plain TensorFlow-semantics convolution written here; and kernels kept at their
 * stored precision (uint8 codes, float16 bits) give the same outputs as float32 kernels.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../src/onnx/writer.js';
import { readNsfwjsGraph } from '../../src/models/starter/tfjs-graph.js';
import { convertTfjsToOnnx } from '../../src/models/starter/tfjs-to-onnx.js';
import { floatToHalf, halfToFloat } from '../../src/util/float16.js';
import { seeded } from '../../src/util/random.js';
import { tempDir } from '../helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ints = (v: number[]) => ({ list: { i: v.map(String) } });

interface Quantized {
  name: string;
  shape: number[];
  codes: Uint8Array;
  min: number;
  scale: number;
}

function quantized(name: string, shape: number[], rand: () => number): Quantized {
  const count = shape.reduce((a, b) => a * b, 1);
  return { name, shape, codes: Uint8Array.from({ length: count }, () => Math.floor(rand() * 256)), min: -0.6, scale: 0.005 };
}
const values = (q: Quantized) => Float32Array.from(q.codes, (c) => q.min + c * q.scale);

/** input [N,9,9,3] → x·2−1 → conv 3×3 stride 2 SAME (+bias, Relu6) → depthwise 3×3 SAME (+bias) → out */
function writeNsfwjsStyleModel(dir: string, rand: () => number) {
  const conv = quantized('conv/W', [3, 3, 3, 4], rand);
  const convB = Float32Array.from({ length: 4 }, () => rand() - 0.5);
  // depthwise kernels stored as float16, as CenterNet stores all of its weights
  const dwBits = Uint16Array.from({ length: 36 }, () => floatToHalf((rand() - 0.5) * 1.2));
  const dwB = Float32Array.from({ length: 4 }, () => rand() - 0.5);
  const node = [
    { name: 'input', op: 'Placeholder', attr: { shape: { shape: { dim: [{ size: '-1' }, { size: '9' }, { size: '9' }, { size: '3' }] } } } },
    { name: 'two', op: 'Const', input: ['^input'] },
    { name: 'one', op: 'Const', input: ['^input'] },
    { name: 'conv/W', op: 'Const' },
    { name: 'conv/b', op: 'Const' },
    { name: 'dw/W', op: 'Const' },
    { name: 'dw/b', op: 'Const' },
    { name: 'scaled', op: 'Mul', input: ['two', 'input'] },
    { name: 'centred', op: 'Sub', input: ['scaled', 'one'] },
    { name: 'conv', op: '_FusedConv2D', input: ['centred', 'conv/W', 'conv/b'], attr: { strides: ints([1, 2, 2, 1]), dilations: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu6')] } } } },
    { name: 'dw', op: 'FusedDepthwiseConv2dNative', input: ['conv', 'dw/W', 'dw/b'], attr: { strides: ints([1, 1, 1, 1]), dilations: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, fused_ops: { list: { s: [b64('BiasAdd')] } } } },
  ];
  const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const weights = [
    { name: 'two', shape: [], dtype: 'float32' },
    { name: 'one', shape: [], dtype: 'float32' },
    { name: 'conv/W', shape: conv.shape, dtype: 'float32', quantization: { dtype: 'uint8', min: conv.min, scale: conv.scale } },
    { name: 'conv/b', shape: [4], dtype: 'float32' },
    { name: 'dw/W', shape: [3, 3, 4, 1], dtype: 'float32', quantization: { dtype: 'float16' } },
    { name: 'dw/b', shape: [4], dtype: 'float32' },
  ];
  const bytes = Buffer.concat([f32(Float32Array.of(2)), f32(Float32Array.of(1)), Buffer.from(conv.codes), f32(convB), Buffer.from(dwBits.buffer), f32(dwB)]);
  // two shards, split mid-weight, as nsfwjs's 4 MB shards split its weights
  const cut = 30;
  const umd = (value: unknown) => `!function(e){module.exports=e()}(function(){return ${JSON.stringify(value)}});\n`;
  writeFileSync(join(dir, 'model.min.js'), umd({ modelTopology: { node }, weightsManifest: [{ paths: ['group1-shard1of2', 'group1-shard2of2'], weights }] }));
  writeFileSync(join(dir, 'group1-shard1of2.min.js'), umd(bytes.subarray(0, cut).toString('base64')));
  writeFileSync(join(dir, 'group1-shard2of2.min.js'), umd(bytes.subarray(cut).toString('base64')));
  return { conv: values(conv), convB, dw: Float32Array.from(dwBits, halfToFloat), dwB };
}

/** TensorFlow's NHWC convolution, SAME padding (extra padding after), HWIO or depthwise HW,C,1 kernels. */
function convNhwc(x: Float32Array, [n, h, w, c]: [number, number, number, number], k: Float32Array, kh: number, kw: number, cout: number, stride: number, depthwise: boolean, bias: Float32Array) {
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const padH = Math.floor(Math.max((oh - 1) * stride + kh - h, 0) / 2);
  const padW = Math.floor(Math.max((ow - 1) * stride + kw - w, 0) / 2);
  const oc = depthwise ? c : cout;
  const out = new Float32Array(n * oh * ow * oc);
  for (let b = 0; b < n; b++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) for (let o = 0; o < oc; o++) {
    let s = bias[o]!;
    for (let dy = 0; dy < kh; dy++) for (let dx = 0; dx < kw; dx++) {
      const iy = y * stride + dy - padH;
      const ix = xx * stride + dx - padW;
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
      if (depthwise) s += x[((b * h + iy) * w + ix) * c + o]! * k[(dy * kw + dx) * c + o]!;
      else for (let i = 0; i < c; i++) s += x[((b * h + iy) * w + ix) * c + i]! * k[((dy * kw + dx) * c + i) * cout + o]!;
    }
    out[((b * oh + y) * ow + xx) * oc + o] = s;
  }
  return { out, shape: [n, oh, ow, oc] as [number, number, number, number] };
}

async function run(onnx: Uint8Array, input: Float32Array, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx);
  const out = await session.run({ input_nhwc: new ort.Tensor('float32', input, [n, 9, 9, 3]) });
  await session.release();
  return out.out!.data as Float32Array;
}

describe('tfjs graph → ONNX (nsfwjs modules, source-precision kernels)', () => {
  const dir = tempDir();
  const w = writeNsfwjsStyleModel(dir, seeded(7));
  const n = 2;
  const rand = seeded(11);
  const input = Float32Array.from({ length: n * 9 * 9 * 3 }, () => rand());

  async function converted(sourcePrecision: boolean) {
    const graph = await readNsfwjsGraph(join(dir, 'model.min.js'));
    return convertTfjsToOnnx(graph, { input: 'input', inputShape: ['batch', 9, 9, 3], outputs: { dw: 'out_nchw' }, sourcePrecision });
  }
  async function convert(sourcePrecision: boolean): Promise<Uint8Array> {
    const c = await converted(sourcePrecision);
    return encodeModel({
      name: 'tiny',
      nodes: [...c.nodes, { op: 'Transpose', inputs: ['out_nchw'], outputs: ['out'], attrs: { perm: { ints: [0, 2, 3, 1] } } }],
      initializers: c.initializers,
      inputs: c.inputs,
      outputs: [{ name: 'out', type: 'float', shape: ['batch', 5, 5, 4] }],
    });
  }

  it('matches a TensorFlow-semantics reference (layout, SAME padding, fused bias and Relu6, depthwise)', async () => {
    const centred = input.map((v) => v * 2 - 1);
    const a = convNhwc(centred, [n, 9, 9, 3], w.conv, 3, 3, 4, 2, false, w.convB);
    const relu6 = a.out.map((v) => Math.min(6, Math.max(0, v)));
    const want = convNhwc(relu6, a.shape, w.dw, 3, 3, 4, 1, true, w.dwB).out;
    const got = await run(await convert(false), input, n);
    assert.equal(got.length, want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst < 1e-4, `largest difference ${worst}`);
    assert.ok(relu6.some((v) => v === 6) || relu6.some((v) => v === 0), 'the clip is exercised');
  });

  it('kernels kept at source precision (uint8 codes, float16 bits): same outputs, smaller initializers', async () => {
    const float = await convert(false);
    const codes = await convert(true);
    const [a, b] = [await run(float, input, n), await run(codes, input, n)];
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
    assert.ok(codes.length < float.length, `${codes.length} < ${float.length} bytes`);
    const kinds = async (u: boolean) => (await converted(u)).initializers.filter((t) => t.dims.length === 4).map((t) => `${t.type}:${t.data.length}`);
    assert.deepEqual(await kinds(false), ['float:108', 'float:36']);
    assert.deepEqual(await kinds(true), ['uint8:108', 'float16:36']);
  });

  it('a shard that is not a base64 string is refused naming it', async () => {
    const bad = tempDir();
    writeNsfwjsStyleModel(bad, seeded(1));
    writeFileSync(join(bad, 'group1-shard2of2.min.js'), 'module.exports = 42;\n');
    await assert.rejects(readNsfwjsGraph(join(bad, 'model.min.js')), (e: Error & { args?: string[] }) => /group1-shard2of2\.min\.js/.test(String(e.args?.[0])) && /base64/.test(e.message));
  });

  it('reads the modules as CommonJS under a package.json of "type": "module" (a cache inside this project)', async () => {
    const esm = tempDir();
    writeFileSync(join(esm, 'package.json'), '{ "type": "module" }\n');
    writeNsfwjsStyleModel(esm, seeded(7));
    const graph = await readNsfwjsGraph(join(esm, 'model.min.js'));
    assert.equal(graph.nodes.size, 11);
    assert.deepEqual(graph.weights.get('conv/b')!.data, w.convB);
    assert.equal((globalThis as { model?: unknown }).model, undefined, 'the UMD wrapper found module.exports, not a global');
  });

  it('a missing shard is FILE_NOT_FOUND naming it', async () => {
    const bad = tempDir();
    writeNsfwjsStyleModel(bad, seeded(1));
    rmSync(join(bad, 'group1-shard2of2.min.js'));
    await assert.rejects(readNsfwjsGraph(join(bad, 'model.min.js')), (e: Error & { code?: string }) => e.code === 'FILE_NOT_FOUND' && /group1-shard2of2\.min\.js/.test(e.message));
  });

  it('weights that run past the shards are refused', async () => {
    const bad = tempDir();
    writeNsfwjsStyleModel(bad, seeded(1));
    writeFileSync(join(bad, 'group1-shard2of2.min.js'), `module.exports = ${JSON.stringify(Buffer.alloc(8).toString('base64'))};\n`);
    await assert.rejects(readNsfwjsGraph(join(bad, 'model.min.js')), /runs past the end/);
  });
});
