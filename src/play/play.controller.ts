import { Controller, Get, Head, Next, Param, Query, Req, Res } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { notFound } from '../common/errors';
import { PlayFilesRepository } from '../repositories/play-files.repository';
import { sendDelivery } from '../delivery/http-delivery';
import { type PlayBytes, PlayService } from './play.service';

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const SEGMENT_TYPE = 'video/mp4';
/** Segments are content-addressed (their URL names their key): cached for ever. Playlists follow the template: briefly. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const PLAYLIST_CACHE = 'public, max-age=10';

/**
 * Play mode: `/v2/play/<token>.m3u8` is an HLS presentation whose segments render on demand
 * (`/v2/play/<token>/init.mp4`, `/v2/play/<token>/seg-<i>.m4s`; with sound a master playlist,
 * `video.m3u8`, and `audio.m3u8` of byte ranges into `audio.mp4`), and `/v2/play/hls.min.js` the
 * player. Other `/v2/play/<token>.<ext>` go on to the delivery routes (the same as `/v2/get`).
 * Declared before DeliveryController, HEAD first (Express would otherwise run GET for HEAD).
 */
@Controller('v2/play')
export class PlayController {
  constructor(
    private readonly play: PlayService,
    private readonly assets: PlayFilesRepository,
  ) {}

  @Head(':file')
  headFile(@Param('file') file: string, @Res() res: Response, @Next() next: NextFunction) {
    return this.file(file, res, next, true);
  }

  @Get(':file')
  getFile(@Param('file') file: string, @Res() res: Response, @Next() next: NextFunction) {
    return this.file(file, res, next, false);
  }

  @Head(':token/:part')
  async headPart(@Param('token') token: string, @Param('part') part: string, @Req() req: Request, @Res() res: Response) {
    const what = partOf(part);
    if (what === 'video.m3u8') return this.getPart(token, part, undefined, req, res);
    const stored = what === 'audio.m3u8' || what === 'audio.mp4' ? await this.play.soundStored(token) : what === 'init' ? await this.play.initStored(token) : await this.play.segmentStored(token, what);
    res.setHeader('Content-Type', SEGMENT_TYPE);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Montage-Status', stored ? 'done' : 'pending');
    res.status(200).end();
  }

  @Get(':token/:part')
  async getPart(@Param('token') token: string, @Param('part') part: string, @Query('k') k: unknown, @Req() req: Request, @Res() res: Response) {
    const what = partOf(part);
    const aborted = new AbortController();
    req.on('close', () => aborted.abort()); // the viewer left: stop waiting (the render goes on for the next one)
    if (what === 'video.m3u8') return sendPlaylist(res, await this.play.videoPlaylist(token), req.method === 'HEAD');
    if (what === 'audio.m3u8') return sendPlaylist(res, await this.play.audioPlaylist(token, aborted.signal), req.method === 'HEAD');
    if (what === 'audio.mp4') return sendDelivery(req, res, await this.play.audioFile(token, aborted.signal));
    const bytes = what === 'init' ? await this.play.init(token, k, aborted.signal) : await this.play.segment(token, what, k, aborted.signal);
    send(res, bytes);
  }

  private async file(file: string, res: Response, next: NextFunction, head: boolean): Promise<void> {
    if (file === 'hls.min.js') {
      const js = await this.assets.hlsJsBundle();
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.setHeader('Content-Length', String(js.length));
      res.setHeader('Cache-Control', 'public, max-age=86400');
      res.status(200);
      if (head) res.end();
      else res.end(js);
      return;
    }
    if (!file.endsWith('.m3u8')) return next();
    sendPlaylist(res, await this.play.playlist(file.slice(0, -'.m3u8'.length)), head);
  }
}

function sendPlaylist(res: Response, playlist: string, head: boolean): void {
  res.setHeader('Content-Type', PLAYLIST_TYPE);
  res.setHeader('Content-Length', String(Buffer.byteLength(playlist)));
  res.setHeader('Cache-Control', PLAYLIST_CACHE);
  res.status(200);
  if (head) res.end();
  else res.end(playlist);
}

function send(res: Response, bytes: PlayBytes): void {
  res.setHeader('Content-Type', SEGMENT_TYPE);
  res.setHeader('Content-Length', String(bytes.body.length));
  // Only a URL naming the current content may be cached for ever (an old playlist's URL gets today's bytes).
  res.setHeader('Cache-Control', bytes.current ? IMMUTABLE : 'no-cache');
  res.setHeader('X-Montage-Status', 'done');
  res.status(200).end(bytes.body);
}

/** `init.mp4`, `seg-<i>.m4s`, the video and audio playlists, the sound; anything else is not part of a presentation. */
function partOf(part: string): number | 'init' | 'video.m3u8' | 'audio.m3u8' | 'audio.mp4' {
  if (part === 'init.mp4') return 'init';
  if (part === 'video.m3u8' || part === 'audio.m3u8' || part === 'audio.mp4') return part;
  const m = /^seg-(\d{1,6})\.m4s$/.exec(part);
  if (!m) throw notFound('not found: a play presentation has video.m3u8, init.mp4, seg-<index>.m4s, and with sound audio.m3u8 and audio.mp4', [{ field: 'segment', message: 'expected init.mp4 or seg-<index>.m4s' }]);
  return Number(m[1]);
}
