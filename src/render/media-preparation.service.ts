import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { AssetCacheService } from '../assets/asset-cache.service';
import type { MediaKind, ProbeResult } from '../assets/asset-cache.types';
import { badInput, MontageError, unusableMedia } from '../common/errors';
import { captionStills } from '../captions/caption-stills';
import type { PreparedAudio, PreparedMedia, PreparedPart, PreparedVisual } from '../compiler/render-plan';
import { even } from '../compiler/render-plan';
import { maskSvg, shapeSvg } from '../compiler/shapes';
import { ffconcatList, type TimedStill } from '../compiler/still-sequence';
import { paddingOf, splitOptions, textUnits } from '../compiler/text-layout';
import type { MediaRef, ResolvedMovie, TimedLayer } from '../compiler/resolve';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { MediaRepository } from '../repositories/media.repository';
import { type CaptionRasterSpec, type Raster, RasterRepository, type TextRasterSpec } from '../repositories/raster.repository';
import type { ResolvedLayerSpec } from '../templates/movie.schema';
import { TemplateFilesRepository } from '../repositories/template-files.repository';
import { WorkFilesRepository } from '../repositories/work-files.repository';
import { UsedMarker } from '../retention/used-marker';
import { lottieAssetFiles, lottieBox, lottieClipFrames, lottieClipProblem, readLottieHeader } from '../compiler/lottie';
import { LottieRepository } from '../repositories/lottie.repository';

/** A local file for a media ref, and a hash that identifies its content. */
interface LocalMedia {
  path: string;
  contentHash: string;
}

/**
 * Turns a resolved movie's layers into files ffmpeg can read: media params downloaded,
 * text/SVG/images/gradients rasterised once by sharp. Rasters are cached by the hash of
 * everything that shapes them, so a repeated render rasterises nothing.
 */
@Injectable()
export class MediaPreparationService {
  private readonly rasterDir: string;

  constructor(
    @Inject(MONTAGE_CONFIG) config: MontageConfig,
    private readonly assets: AssetCacheService,
    private readonly media: MediaRepository,
    private readonly rasters: RasterRepository,
    private readonly templateFiles: TemplateFilesRepository,
    private readonly work: WorkFilesRepository,
    private readonly lottie: LottieRepository,
  ) {
    this.rasterDir = path.join(config.dataDir, 'cache', 'rasters');
  }

  async prepare(movie: ResolvedMovie): Promise<PreparedMedia> {
    await this.work.ensureDir(this.rasterDir);
    const layers = movie.scenes.flatMap((s) => s.layers);
    const visuals: Record<string, PreparedVisual> = {};
    const audio: Record<string, PreparedAudio> = {};
    const masks: Record<string, string> = {};
    await Promise.all([
      ...layers.map(async (layer) => {
        const prepared = await this.prepareLayer(movie, layer);
        if (prepared) visuals[layer.id] = prepared;
        const mask = await this.prepareMask(movie, layer, prepared);
        if (mask) masks[layer.id] = mask;
      }),
      ...movie.audio.map(async (track) => {
        const local = await this.local(track.media, 'audio');
        const probe = await this.probe(local);
        if (!probe.hasAudio) throw unusableMedia(`${describe(track.media)} has no audio stream`);
        audio[track.id] = { path: local.path, durationSec: probe.durationSec ?? 0 };
      }),
    ]);
    return Object.keys(masks).length ? { visuals, audio, masks } : { visuals, audio };
  }

  /**
   * A layer's mask as a grey PNG exactly the size of its content (a raster with its outline or
   * shadow margins, a clip's box): shapes are drawn in the layer's box coordinates, images give
   * their alpha, fitted to the mask's box.
   */
  private async prepareMask(movie: ResolvedMovie, layer: TimedLayer, prepared: PreparedVisual | undefined): Promise<string | undefined> {
    const spec = layer.spec;
    if (!('mask' in spec) || !spec.mask) return undefined;
    const mask = spec.mask;
    // The content's size, and where its top-left is in the layer's box.
    const content =
      prepared?.kind === 'still' && !(spec.type === 'image' && spec.kenBurns)
        ? { width: prepared.width, height: prepared.height, dx: prepared.dx, dy: prepared.dy }
        : prepared?.kind === 'clip'
          ? { width: prepared.width, height: prepared.height, dx: 0, dy: 0 }
          : {
              width: even(spec.width ?? (spec.type === 'solid' ? movie.width - spec.x : movie.width)),
              height: even(spec.height ?? (spec.type === 'solid' ? movie.height - spec.y : movie.height)),
              dx: 0,
              dy: 0,
            };
    // Given, x and y are in the layer's box (the content may start before it: a text's margins);
    // left out, the mask starts with the content, and a missing size reaches the content's far side.
    const left = mask.x === undefined ? 0 : mask.x - content.dx;
    const top = mask.y === undefined ? 0 : mask.y - content.dy;
    const box = { x: left, y: top, width: mask.width ?? content.width - left, height: mask.height ?? content.height - top };
    if (box.width <= 0 || box.height <= 0) throw badInput(`layer ${layer.id}: the mask has no area inside the layer`, [{ field: layer.id, message: 'the mask has no area' }]);
    if (layer.maskMedia) {
      const src = await this.local(layer.maskMedia, 'image');
      return (
        await this.cachedRaster(['mask-image', src.contentHash, box, content.width, content.height, mask.invert, mask.feather], (out) =>
          this.rasters.maskFromImage(src.path, { ...box, invert: mask.invert, feather: mask.feather }, content, out),
        )
      ).path;
    }
    const markup = maskSvg({ shape: mask.shape ?? 'rectangle', ...box, radius: mask.radius, feather: mask.feather, invert: mask.invert }, content);
    return (await this.cachedRaster(['mask', markup], (out) => this.rasters.svg(markup, { width: content.width, height: content.height }, out))).path;
  }

  private async prepareLayer(movie: ResolvedMovie, layer: TimedLayer): Promise<PreparedVisual | undefined> {
    const spec = layer.spec;
    switch (spec.type) {
      case 'solid':
        return undefined;
      case 'gradient': {
        const width = spec.width ?? movie.width - spec.x;
        const height = spec.height ?? movie.height - spec.y;
        return this.cachedRaster(['gradient', spec.colors, spec.angle, width, height], (out) =>
          this.rasters.gradient(spec.colors, spec.angle, Math.round(width), Math.round(height), out),
        );
      }
      case 'image': {
        const src = await this.local(layer.media!, 'image');
        const zoom = spec.kenBurns ? Math.max(spec.kenBurns.from.zoom, spec.kenBurns.to.zoom) : 1;
        // No box: the image covers the canvas. One side only: the other follows the image's aspect.
        const both = spec.kenBurns || (!spec.width && !spec.height);
        const target = {
          width: (spec.width ?? (both ? movie.width : undefined)) && (spec.width ?? movie.width) * zoom,
          height: (spec.height ?? (both ? movie.height : undefined)) && (spec.height ?? movie.height) * zoom,
        };
        return this.cachedRaster(['image', src.contentHash, target, spec.fit], (out) =>
          this.rasters.image(src.path, target, spec.kenBurns ? 'cover' : spec.fit, out),
        );
      }
      case 'text':
        return this.prepareText(layer, spec);
      case 'captions':
        return this.prepareCaptions(movie, layer);
      case 'shape': {
        const drawing = shapeSvg(spec, movie);
        if (typeof drawing === 'string') throw badInput(`layer ${layer.id}: ${drawing}`, [{ field: layer.id, message: drawing }]);
        const raster = await this.cachedRaster(['shape', drawing.markup], (out) =>
          this.rasters.svg(drawing.markup, { width: drawing.width, height: drawing.height }, out),
        );
        return { ...raster, dx: drawing.dx, dy: drawing.dy } as PreparedVisual;
      }
      case 'svg':
        return this.cachedRaster(['svg', layer.svg, spec.width, spec.height], (out) =>
          this.rasters.svg(layer.svg!, { width: spec.width, height: spec.height }, out),
        ).catch((err: unknown) => {
          // Well-formed XML that librsvg still refuses is the template's mistake: name its file.
          if (!(err instanceof MontageError)) throw err;
          const field = `${movie.templateId}/${path.posix.normalize(spec.src)}`;
          throw badInput(`${field}: ${err.message} (after applying params)`, [{ field, message: err.message }]);
        });
      case 'lottie':
        return this.lottieClip(movie, layer, spec);
      case 'video': {
        const src = await this.local(layer.media!, 'video');
        const probe = await this.probe(src);
        if (!probe.hasVideo) throw unusableMedia(`${describe(layer.media!)} is not a video`);
        return {
          kind: 'video',
          path: src.path,
          width: probe.width ?? movie.width,
          height: probe.height ?? movie.height,
          durationSec: probe.durationSec ?? 0,
          hasAudio: probe.hasAudio,
        };
      }
    }
  }

  /**
   * A text layer: its whole raster; for a split text also each unit alone (and its background
   * alone), cropped to its ink at its place in the whole layout, at the size the whole settled on.
   */
  private async prepareText(layer: TimedLayer, spec: Extract<ResolvedLayerSpec, { type: 'text' }>): Promise<PreparedVisual> {
    const fontHash = layer.fontFile ? await this.templateFiles.hashFile(layer.fontFile) : undefined;
    const shrink = spec.fit === 'shrink';
    const textSpec: TextRasterSpec = {
      text: spec.text,
      family: spec.font.family,
      fontFile: layer.fontFile,
      size: shrink ? (spec.maxSize ?? spec.font.size) : spec.font.size,
      weight: spec.font.weight,
      style: spec.font.style,
      color: spec.color,
      align: spec.align,
      lineHeight: spec.lineHeight,
      width: spec.width,
      height: spec.height,
      verticalAlign: spec.verticalAlign,
      shrink: shrink ? { minSize: Math.min(spec.minSize, spec.maxSize ?? spec.font.size) } : undefined,
      outline: spec.outline,
      shadow: spec.shadow,
      background: spec.background && { ...spec.background, padding: paddingOf(spec.background.padding) },
    };
    const key = ['text', { ...textSpec, fontFile: fontHash }];
    const whole = await this.cachedRaster(key, (out) => this.rasters.text(textSpec, out));
    if (!spec.split || whole.kind !== 'still') return whole;
    const fixed: TextRasterSpec = { ...textSpec, size: whole.text?.size ?? textSpec.size, shrink: undefined };
    const ranges = textUnits(spec.text, splitOptions(spec.split).by);
    const units: PreparedPart[] = [];
    // A few at a time: each is a whole-canvas raster in memory while it is drawn.
    for (let i = 0; i < ranges.length; i += 4) {
      const batch = ranges.slice(i, i + 4).map((unit) => this.cachedRaster([...key, 'unit', unit], (out) => this.rasters.text(fixed, out, { unit })));
      units.push(...(await Promise.all(batch)).map(part));
    }
    const background = textSpec.background ? part(await this.cachedRaster([...key, 'background'], (out) => this.rasters.text(fixed, out, { background: true }))) : undefined;
    return { ...whole, units, textBackground: background };
  }

  /** A Lottie layer's clip: rendered once, at the movie's fps and the box's size, cached by everything that shapes it. */
  private async lottieClip(movie: ResolvedMovie, layer: TimedLayer, spec: Extract<TimedLayer['spec'], { type: 'lottie' }>): Promise<PreparedVisual> {
    const { file, rel, templateFiles, field } = layer.lottie!;
    const refuse = (message: string) => badInput(`${field}: ${message}`, [{ field, message }]);
    const header = readLottieHeader(await this.lottie.readSource(file, field));
    if (typeof header === 'string') throw refuse(header);
    const { width, height } = lottieBox(spec, header);
    const layerFrames = layer.endFrame - layer.startFrame;
    const problem = lottieClipProblem(width, height, layerFrames);
    if (problem) throw refuse(problem);
    const needed = lottieAssetFiles(header, rel, templateFiles);
    if (typeof needed === 'string') throw refuse(needed);
    const assets = Object.fromEntries(Object.entries(needed).map(([name, relPath]) => [name, path.join(path.dirname(file), path.posix.relative(path.posix.dirname(rel), relPath))]));
    const assetHashes = await Promise.all(Object.entries(assets).map(async ([name, f]) => [name, await this.templateFiles.hashFile(f)]));
    const { frames, loop } = lottieClipFrames(header, { layerFrames, movieFps: movie.fps, speed: spec.speed, loop: spec.loop });
    const contentHash = await this.templateFiles.hashFile(file);
    const key = ['lottie', contentHash, assetHashes, width, height, movie.fps, frames.length, spec.speed, spec.loop];
    const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32);
    const clip = path.join(this.rasterDir, `${hash}.mov`);
    const prepared: PreparedVisual = { kind: 'clip', path: clip, width, height, frames: frames.length, loop };
    if (await this.work.exists(clip)) {
      this.usage.used(clip);
      return prepared;
    }
    const temp = await this.work.tempFor(clip);
    try {
      await this.lottie.renderClip({ src: file, assets, width, height, fps: movie.fps, frames, field }, temp);
      await this.work.commit(temp, clip);
      return prepared;
    } catch (err) {
      await this.work.remove(temp);
      throw err;
    }
  }

  /**
   * A caption layer → one sequence: a raster per cue (per cue × word when a word is
   * highlighted), each placed on one common canvas (the box's width, the tallest cue's height),
   * and an ffconcat list that shows them at their frames.
   */
  private async prepareCaptions(movie: ResolvedMovie, layer: TimedLayer): Promise<PreparedVisual> {
    const spec = layer.spec;
    if (spec.type !== 'captions') throw new Error(`layer ${layer.id} is not a caption layer`);
    const cues = layer.captions ?? [];
    const fontHash = layer.fontFile ? await this.templateFiles.hashFile(layer.fontFile) : undefined;
    const boxX = spec.x ?? spec.margin;
    const boxWidth = spec.width ?? Math.max(2, movie.width - boxX - spec.margin);
    const style = {
      family: spec.font.family,
      fontFile: layer.fontFile,
      size: spec.font.size,
      weight: spec.font.weight,
      style: spec.font.style,
      color: spec.color,
      align: spec.align,
      lineHeight: spec.lineHeight,
      background: spec.background,
      maxWidth: boxWidth,
    };
    const stills = captionStills(cues, movie.fps, spec.highlight !== undefined);
    const pictures = new Map<string, { cue: number; word?: { line: number; word: number } }>();
    for (const s of stills) pictures.set(pictureKey(s), s);
    const natural = new Map<string, StillVisual>();
    await Promise.all(
      [...pictures].map(async ([key, p]) => {
        const cueSpec: CaptionRasterSpec = {
          ...style,
          lines: cues[p.cue].lines.map((l) => l.map((w) => w.text)),
          ...(p.word && spec.highlight ? { highlight: { ...p.word, color: spec.highlight } } : {}),
        };
        natural.set(key, await this.cachedRaster(['caption', { ...cueSpec, fontFile: fontHash }], (out) => this.rasters.captionCue(cueSpec, out)));
      }),
    );
    const sizes = [...natural.values()];
    const canvas = {
      width: even(Math.max(boxWidth, ...sizes.map((r) => r.width))),
      height: even(Math.max(2, ...sizes.map((r) => r.height))),
      align: spec.align,
      bottom: spec.y === undefined,
    };
    const placed = new Map<string, string>();
    await Promise.all(
      [...natural].map(async ([key, raster]) => {
        const r = await this.cachedRaster(['placed', raster.path, canvas], (out) => this.rasters.place(raster.path, canvas, out));
        placed.set(key, r.path);
      }),
    );
    const blank = await this.cachedRaster(['blank', canvas.width, canvas.height], (out) => this.rasters.place(undefined, canvas, out));
    const timed: TimedStill[] = stills.map((s) => ({ path: placed.get(pictureKey(s))!, startFrame: s.startFrame, endFrame: s.endFrame }));
    const text = ffconcatList(timed, { startFrame: layer.startFrame, endFrame: layer.endFrame }, movie.fps, blank.path);
    const list = path.join(this.rasterDir, `${createHash('sha256').update(text).digest('hex').slice(0, 32)}.ffconcat`);
    await this.work.writeText(list, text);
    const dx = spec.align === 'center' ? -Math.floor((canvas.width - boxWidth) / 2) : spec.align === 'right' ? boxWidth - canvas.width : 0;
    return { kind: 'sequence', list, startFrame: layer.startFrame, width: canvas.width, height: canvas.height, dx, dy: 0 };
  }

  private async cachedRaster(key: unknown[], make: (out: string) => Promise<Raster>): Promise<StillVisual> {
    const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32);
    const file = path.join(this.rasterDir, `${hash}.png`);
    const meta = `${file}.json`;
    const known = (await this.work.exists(file)) ? await this.work.readJson<Raster>(meta) : undefined;
    if (known) {
      this.usage.used(file);
      return { kind: 'still', ...known, path: file };
    }
    const temp = await this.work.tempFor(file);
    try {
      const raster = await make(temp);
      await this.work.commit(temp, file);
      await this.work.writeJson(meta, { ...raster, path: file });
      return { kind: 'still', ...raster, path: file };
    } catch (err) {
      await this.work.remove(temp);
      throw err;
    }
  }

  /** Probes by content: the same music or clip in every render is probed once per process. */
  private probe(local: LocalMedia): Promise<ProbeResult> {
    let probed = this.probes.get(local.contentHash);
    if (!probed) {
      probed = this.media.probe(local.path);
      this.probes.set(local.contentHash, probed);
      probed.catch(() => this.probes.delete(local.contentHash));
      if (this.probes.size > 1000) this.probes.delete(this.probes.keys().next().value!); // oldest first
    }
    return probed;
  }

  private readonly probes = new Map<string, Promise<ProbeResult>>();

  /** The sweeper evicts least recently used rasters first: a hit marks the raster used. */
  private readonly usage = new UsedMarker((file) => this.work.touch(file));

  /** A media param or template file as a local path (URLs through the asset cache and its URL policy): for engines that read files themselves. */
  async localPath(ref: MediaRef, kind: MediaKind): Promise<string> {
    return (await this.local(ref, kind)).path;
  }

  private async local(ref: MediaRef, kind: MediaKind): Promise<LocalMedia> {
    if (ref.kind === 'url') {
      const asset = await this.assets.fetch(ref.url, kind);
      return { path: asset.path, contentHash: asset.sha256 };
    }
    return { path: ref.path, contentHash: await this.templateFiles.hashFile(ref.path) };
  }
}

/** A prepared raster as a part of a layer. */
function part(visual: StillVisual): PreparedPart {
  return { path: visual.path, width: visual.width, height: visual.height, dx: visual.dx, dy: visual.dy };
}

function describe(ref: MediaRef): string {
  return ref.kind === 'url' ? ref.url.slice(0, 200) : path.basename(ref.path);
}

type StillVisual = Extract<PreparedVisual, { kind: 'still' }>;

function pictureKey(s: { cue: number; word?: { line: number; word: number } }): string {
  return s.word ? `${s.cue}.${s.word.line}.${s.word.word}` : `${s.cue}`;
}
