import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { notFound } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { apiKeyOf, baseUrlOf } from '../delivery/http-delivery';
import { StudioFilesRepository } from '../repositories/studio-files.repository';
import { StudioService } from './studio.service';

/** The page's own files: nothing else under /studio/app is served. */
const APP_FILES: Record<string, string> = {
  'studio.js': 'text/javascript; charset=utf-8',
  'player.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'form.js': 'text/javascript; charset=utf-8',
  'studio.css': 'text/css; charset=utf-8',
};

/**
 * No inline script or style, nothing from elsewhere: previews are blob: URLs, hls.js runs its
 * worker from a blob:, media and JSON come from this origin.
 */
export const STUDIO_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The designer studio: the page and its files (no key needed), and its JSON (the project's key, as all of /v2). */
@Controller()
export class StudioController {
  constructor(
    private readonly studio: StudioService,
    private readonly files: StudioFilesRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Get(['studio', 'studio/'])
  async page(@Res() res: Response) {
    const html = await this.files.studioFile('index.html');
    if (!html) throw notFound('the studio is not installed (run npm run build)');
    this.sendFile(res, html, 'text/html; charset=utf-8', 'no-cache');
  }

  @Get('studio/app/:file')
  async appFile(@Param('file') file: string, @Res() res: Response) {
    const type = Object.hasOwn(APP_FILES, file) ? APP_FILES[file] : undefined;
    const data = type ? await this.files.studioFile(file) : undefined;
    if (!type || !data) throw notFound(`no studio file "${file.slice(0, 64)}"`);
    this.sendFile(res, data, type, 'no-cache');
  }

  @Get('v2/studio/:projectId')
  async movies(@Param('projectId') projectId: string, @Req() req: Request) {
    return this.studio.movies(await this.studio.authenticate(projectId, apiKeyOf(req)));
  }

  @Get('v2/studio/:projectId/movies/:movie')
  async movie(@Param('projectId') projectId: string, @Param('movie') movie: string, @Req() req: Request) {
    return this.studio.movie(await this.studio.authenticate(projectId, apiKeyOf(req)), movie);
  }

  @Post('v2/studio/:projectId/timeline')
  @HttpCode(200)
  async timeline(@Param('projectId') projectId: string, @Body() body: unknown, @Req() req: Request) {
    return this.studio.timeline(await this.studio.authenticate(projectId, apiKeyOf(req)), body);
  }

  @Post('v2/studio/:projectId/embed')
  @HttpCode(200)
  async embed(@Param('projectId') projectId: string, @Body() body: unknown, @Req() req: Request) {
    return this.studio.embed(await this.studio.authenticate(projectId, apiKeyOf(req)), body, baseUrlOf(req, this.config.publicUrl));
  }

  /** Server-Sent Events: `event: change` with `{movies}` after each burst of edits to the project's templates. */
  @Get('v2/studio/:projectId/events')
  async events(@Param('projectId') projectId: string, @Req() req: Request, @Res() res: Response) {
    const project = await this.studio.authenticate(projectId, apiKeyOf(req));
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    const unsubscribe = this.studio.watch(project, (movies) => res.write(`event: change\ndata: ${JSON.stringify({ movies })}\n\n`));
    // A comment now and then keeps proxies from closing an idle stream.
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    req.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  }

  private sendFile(res: Response, data: Buffer, type: string, cache: string): void {
    res.set({
      'Content-Type': type,
      'Content-Length': String(data.length),
      'Cache-Control': cache,
      'Content-Security-Policy': STUDIO_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.status(200).end(data);
  }
}
