import { Controller, Get, Head, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { badInput, notFound } from '../common/errors';
import { contentTypeOf, isOutputFormat } from '../formats/output-formats';
import { ProjectsService } from '../projects/projects.service';
import { RenderRunner } from '../renders/render-runner.service';
import { TokensService } from '../tokens/tokens.service';
import { sendDelivery, splitFile } from './http-delivery';

type Mode = 'render' | 'get';

/**
 * Outputs by token. `/v2/render/…` answers once the output is complete; `/v2/get/…`,
 * `/v2/play/…` and the short `/<token>.<ext>` send a video while it renders. HEAD never starts
 * a render. Routes are declared HEAD first: Express would otherwise run GET for HEAD.
 */
@Controller()
export class DeliveryController {
  constructor(
    private readonly tokens: TokensService,
    private readonly runner: RenderRunner,
    private readonly projects: ProjectsService,
  ) {}

  @Head(['v2/render/:file', 'v2/get/:file', 'v2/play/:file'])
  async headOutput(@Param('file') file: string, @Query() query: Record<string, unknown>, @Res() res: Response) {
    const { token, ext } = this.parse(file);
    if (ext === 'vtt') return this.sendCaptions(token, res, true);
    const located = await this.tokens.locate(token, ext, query);
    const state = await this.runner.peek(located);
    res.setHeader('Content-Type', contentTypeOf(located.format));
    res.setHeader('X-Montage-Status', state.status);
    if (state.size !== undefined) {
      res.setHeader('Content-Length', String(state.size));
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('ETag', `"${located.key}"`);
    }
    res.status(200).end();
  }

  @Get('v2/render/:file')
  renderComplete(@Param('file') file: string, @Query() query: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.serve(file, query, 'render', req, res);
  }

  @Get(['v2/get/:file', 'v2/play/:file'])
  getProgressive(@Param('file') file: string, @Query() query: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.serve(file, query, 'get', req, res);
  }

  @Head('v1/render/:projectId/:file')
  async headSigned(@Param('projectId') projectId: string, @Param('file') file: string, @Req() req: Request, @Res() res: Response) {
    const { token, ext, query } = await this.signedToken(projectId, file, req);
    return this.headOutput(`${token}.${ext}`, query, res);
  }

  /** Direct render for `<img>`/`<video>` tags: params in the query, signed with the project's secret. */
  @Get('v1/render/:projectId/:file')
  async signed(@Param('projectId') projectId: string, @Param('file') file: string, @Req() req: Request, @Res() res: Response) {
    const { token, ext, query } = await this.signedToken(projectId, file, req);
    return this.serve(`${token}.${ext}`, query, 'get', req, res);
  }

  private async signedToken(projectId: string, file: string, req: Request) {
    const { token: movie, ext } = this.parse(file);
    const query = Object.fromEntries(Object.entries(req.query).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const project = await this.projects.checkSignature(projectId, req.path, query);
    const { sig: _sig, frame, q, ...params } = query;
    const pinned = { ...(frame !== undefined ? { frame: decimal(frame, 'frame') } : {}), ...(q !== undefined ? { q: decimal(q, 'q') } : {}) };
    const token = await this.tokens.tokenForSignedUrl(project, movie, ext, params, pinned);
    return { token, ext, query: {} };
  }

  // Declared last so that it never shadows a named route.
  @Head(':file')
  headShort(@Param('file') file: string, @Query() query: Record<string, unknown>, @Res() res: Response) {
    this.parse(file, true);
    return this.headOutput(file, query, res);
  }

  @Get(':file')
  short(@Param('file') file: string, @Query() query: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    this.parse(file, true);
    return this.serve(file, query, 'get', req, res);
  }

  private async serve(file: string, query: Record<string, unknown>, mode: Mode, req: Request, res: Response): Promise<void> {
    const { token, ext } = this.parse(file);
    if (ext === 'vtt') return this.sendCaptions(token, res, req.method === 'HEAD');
    const located = await this.tokens.locate(token, ext, query);
    const aborted = new AbortController();
    res.on('close', () => aborted.abort()); // the viewer left; the render goes on for the next one
    const delivery = await this.runner.deliver(located, mode === 'get', aborted.signal);
    await sendDelivery(req, res, delivery);
  }

  /** The movie's captions as WebVTT: made from the resolved movie on each request (no render, nothing stored). */
  private async sendCaptions(token: string, res: Response, head: boolean): Promise<void> {
    const vtt = await this.tokens.captionsVtt(token);
    res.setHeader('Content-Type', contentTypeOf('vtt'));
    res.setHeader('Content-Length', String(Buffer.byteLength(vtt)));
    res.setHeader('Cache-Control', 'no-cache'); // a template's new version may change the captions
    res.setHeader('X-Montage-Status', 'done');
    res.status(200);
    if (head) res.end();
    else res.end(vtt);
  }

  private parse(file: string, short = false): { token: string; ext: string } {
    const parsed = splitFile(file);
    // The short form shares the root with everything else: only output files are ours there.
    if (!parsed || (short && !isOutputFormat(parsed.ext))) throw notFound('not found: expected <token>.<ext>');
    return parsed;
  }
}

/** Decimal digits only: `0x10`, `1e1` and an empty value are not numbers here. */
function decimal(raw: string, name: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw badInput(`${name} must be a whole number in decimal digits`, [{ field: name, message: 'not a decimal number' }]);
  return Number(raw);
}
