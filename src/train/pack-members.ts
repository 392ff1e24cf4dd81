/**
 * Puts more starter models into one pack (`duo pack-members`): each member pack's text graph,
 * image head and vocabulary go into a folder of the pack (`member-1`, …) and the manifest's
 * `ensemble` names them with their weights; the pack's backbone serves all of them, so an image
 * goes through it once (starter-encoder.ts). A member that reads MobileNetV2 features brings
 * its two-branch backbone, which replaces the pack's when its CenterNet outputs are the pack's
 * own: checked by running both on probe images, since the point is that the pack's first model
 * and its cross-encoder see exactly the features they were trained on.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { createError } from '../errors.js';
import { BackboneRunner, needsMobilenet, type FeatureKind } from '../models/starter/backbone-runner.js';
import { BACKBONE_PACKAGE, MOBILENET_DIM, MOBILENET_PACKAGE, sha256File } from '../models/starter/backbone.js';
import type { PackEnsemble, StarterManifest } from '../models/starter/starter-encoder.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { isPackEntry } from '../models/model-source.js';
import { seeded } from '../util/random.js';
import { PACK_FORMAT } from './export-pack.js';

export interface PackMembersOptions {
  /** the pack that receives the members (its own model stays the first) */
  pack: string;
  /** the pack's own model's weight */
  weight: number;
  members: { spec: string; weight: number }[];
}

export interface PackMembersResult {
  pack: string;
  members: { folder: string; from: string; features: FeatureKind; weight: number }[];
  weight: number;
  /** the backbone was replaced by a member's two-branch one */
  backboneFrom?: string;
  /** the pack had a query bank, removed: it was embedded by the pack without these members */
  droppedQueryBank: boolean;
}

/** Probe images for the backbone check: seeded noise over a gradient, two sizes (both resize paths). */
async function probeImages(): Promise<DecodedImage[]> {
  const rand = seeded(7);
  const out: DecodedImage[] = [];
  for (const [w, h] of [[300, 200], [160, 240]] as const) {
    const px = Buffer.alloc(w * h * 3);
    for (let i = 0; i < px.length; i++) px[i] = Math.floor((((i / 3) % w) / w) * 200 + rand() * 55);
    out.push(await loadImage(await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer()));
  }
  return out;
}

/** Whether `candidate` gives the CenterNet outputs (pooled and grid) of `current` on probe images, with `mobilenet` also its MobileNetV2 vector; with `requireMobilenet`, only if it has the branch. */
async function sameOutputs(current: string, candidate: string, o: { mobilenet: boolean; requireMobilenet: boolean }): Promise<boolean> {
  const a = await BackboneRunner.load(current);
  let b: BackboneRunner | undefined;
  try {
    b = await BackboneRunner.load(candidate);
    // a member that reads MobileNetV2 must bring it: a candidate without the branch never matches
    if (o.requireMobilenet && !b.hasMobilenet) return false;
    const images = await probeImages();
    const [fa, fb] = [await a.run(images), await b.run(images)];
    const close = (x: Float32Array | undefined, y: Float32Array | undefined) => !!x && !!y && x.length === y.length && x.every((v, i) => Math.abs(v - y[i]!) <= 1e-5 * (1 + Math.abs(v)));
    return fa.every((f, i) => close(f.pooled, fb[i]!.pooled) && close(f.grid, fb[i]!.grid) && (!o.mobilenet || close(f.mobilenet, fb[i]!.mobilenet)));
  } finally {
    await Promise.all([a.dispose(), b?.dispose()]);
  }
}

function readPackManifest(dir: string, flag: string): StarterManifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) throw createError('FILE_NOT_FOUND', path);
  let m: StarterManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as StarterManifest;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, `not JSON (${(error as Error).message})`);
  }
  if (m.format !== PACK_FORMAT) throw createError('BAD_ARGUMENT', flag, `${dir} is not a starter pack (manifest format ${JSON.stringify(m.format)})`);
  return m;
}

/** The files of a member pack that its folder in the pack holds (no backbone, no cross-encoder). */
function memberFiles(m: StarterManifest, dir: string): string[] {
  const files = ['vocab.json', 'text_model.onnx', 'image_head.onnx'];
  if (m.openVocabulary) files.push(m.openVocabulary.words, m.openVocabulary.table);
  // files of the member's own folder: nothing outside it is copied
  const outside = files.find((f) => !isPackEntry(f));
  if (outside !== undefined) throw createError('MODEL_UNSUPPORTED', join(dir, 'manifest.json'), `openVocabulary names ${JSON.stringify(outside)}, not a file of the pack`);
  return files;
}

export async function packMembers(opts: PackMembersOptions): Promise<PackMembersResult> {
  const pack = resolve(opts.pack);
  const manifest = readPackManifest(pack, '--pack');
  if (opts.members.length === 0) throw createError('BAD_ARGUMENT', '--add', 'name at least one member pack');
  for (const [i, w] of [opts.weight, ...opts.members.map((m) => m.weight)].entries()) {
    if (!(Number.isFinite(w) && w > 0)) throw createError('BAD_ARGUMENT', i === 0 ? '--weight' : '--add', `weight ${w} is not a positive number`);
  }
  const backbone = join(pack, 'backbone.onnx');
  let backboneFrom: string | undefined;
  const runner = await BackboneRunner.load(backbone);
  let hasMobilenet = runner.hasMobilenet;
  await runner.dispose();
  const members = opts.members.map((m, i) => {
    const dir = resolve(m.spec);
    if (dir === pack) throw createError('BAD_ARGUMENT', '--add', `${m.spec} is the pack itself`);
    const mm = readPackManifest(dir, '--add');
    if (mm.ensemble) throw createError('BAD_ARGUMENT', '--add', `${m.spec} holds members of its own: add its packs one by one`);
    for (const f of [...memberFiles(mm, dir), 'backbone.onnx']) if (!existsSync(join(dir, f))) throw createError('FILE_NOT_FOUND', join(dir, f));
    return { folder: `member-${i + 1}`, dir, manifest: mm, weight: m.weight, features: mm.features ?? 'pooled' };
  });
  // each member must see the features it was trained on: the pack's backbone, or one with the pack's CenterNet outputs plus
  // the MobileNetV2 it read (which then serves the whole pack); a second MobileNetV2 member must match that one too
  let current = backbone;
  for (const m of members) {
    const theirs = join(m.dir, 'backbone.onnx');
    const wantsMobilenet = needsMobilenet(m.features);
    if (sha256File(theirs) === sha256File(current)) {
      if (wantsMobilenet && !hasMobilenet) throw createError('BAD_ARGUMENT', '--add', `${m.dir} reads ${m.features} features, and its backbone.onnx has no MobileNetV2 branch`);
      continue;
    }
    if (!(await sameOutputs(current, theirs, { mobilenet: wantsMobilenet && hasMobilenet, requireMobilenet: wantsMobilenet }))) {
      throw createError('BAD_ARGUMENT', '--add', `${m.dir}'s backbone.onnx gives other ${wantsMobilenet ? 'CenterNet or MobileNetV2' : 'CenterNet'} features than ${current}: its model was trained on another backbone`);
    }
    if (wantsMobilenet && !hasMobilenet) {
      backboneFrom = current = theirs;
      hasMobilenet = true;
    }
  }
  if (backboneFrom) {
    await writeFileAtomic(backbone, readFileSync(backboneFrom));
  }
  // a query bank was embedded by the model without these members: it goes (duo query-bank writes a new one), once the new manifest no longer names it
  const staleBank = manifest.queryBank;
  // each member folder is written beside and renamed into place; folders of an earlier member list go once the manifest is written
  const previous = (manifest.ensemble?.members ?? []).map((m) => m.folder).filter((f) => isPackEntry(f) && !members.some((m) => m.folder === f));
  for (const m of members) {
    const tmp = join(pack, `.${m.folder}.tmp`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    for (const f of memberFiles(m.manifest, m.dir)) copyFileSync(join(m.dir, f), join(tmp, f));
    // what the pack's model owns (its cross-encoder, backbone and query bank) is not the member's
    const { crossEncoder: _cross, backbone: _backbone, queryBank: _bank, ...own } = m.manifest;
    await writeFileAtomic(join(tmp, 'manifest.json'), `${JSON.stringify({ ...own, backbone: { shared: "the backbone.onnx of the pack this folder is in" } }, null, 2)}\n`);
    rmSync(join(pack, m.folder), { recursive: true, force: true });
    renameSync(tmp, join(pack, m.folder));
  }
  const ensemble: PackEnsemble = {
    note: "the pack's own model and each member's are unit vectors scaled by √(weight / total) side by side: a cosine of two pack vectors is the weighted sum of the models' cosines. The weights are those of the --model spec that `duo eval --model a,b --ensemble-weights …` prints for the best row (chosen on dev).",
    weight: opts.weight,
    // what made each member (its run and command), not where its pack was on the machine that packed it
    members: members.map((m) => {
      const training = m.manifest.training as { run?: string; command?: string } | undefined;
      return { folder: m.folder, weight: m.weight, features: m.features, run: training?.run, command: training?.command };
    }),
  };
  const { queryBank: _stale, ...kept } = manifest;
  const next: StarterManifest = { ...kept, ensemble };
  if (backboneFrom) {
    next.backbone = {
      file: 'backbone.onnx',
      source: `${BACKBONE_PACKAGE} models/centernet.json (COCO CenterNet, MobileNetV3) and ${MOBILENET_PACKAGE} mobilenet_v2_mid (MobileNetV2 1.4, ImageNet), converted to ONNX by src/models/starter/backbone.ts`,
      outputs: `backbone_mean[480] + class_max[80]; grid[480x4x4] for stage 2; mobilenet_mean[${MOBILENET_DIM}]`,
      sha256: sha256File(backbone),
      note: `the two-branch backbone of ${members.find((m) => join(m.dir, 'backbone.onnx') === backboneFrom)!.folder}'s pack; its CenterNet outputs are the earlier backbone's`,
    };
  }
  await writeFileAtomic(join(pack, 'manifest.json'), `${JSON.stringify(next, null, 2)}\n`);
  for (const folder of previous) rmSync(join(pack, folder), { recursive: true, force: true });
  if (staleBank && isPackEntry(staleBank.file)) rmSync(join(pack, staleBank.file), { force: true });
  return { pack, weight: opts.weight, backboneFrom, droppedQueryBank: Boolean(staleBank), members: members.map((m) => ({ folder: m.folder, from: m.dir, features: m.features, weight: m.weight })) };
}
