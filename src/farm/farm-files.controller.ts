import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { badInput, notFound } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { apiKeyOf, baseUrlOf } from '../delivery/http-delivery';
import { attachmentDisposition } from '../repositories/output-storage/port';
import { ProjectsService } from '../projects/projects.service';
import { FarmFilesService } from './farm-files.service';
import { FarmUrlsService } from './farm-urls.service';

/**
 * Uploads of the farm: Rentaflop's `upload` → (post the file) → `confirm-upload`, with the key
 * in the body (`api_key`) or a header; signed routes (the upload form, stored objects) need none.
 */
@Controller('v1/farm')
export class FarmFilesController {
  constructor(
    private readonly files: FarmFilesService,
    private readonly urls: FarmUrlsService,
    private readonly projects: ProjectsService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Post('upload')
  @HttpCode(200)
  async upload(@Body() body: unknown, @Req() req: Request) {
    const project = await this.project(body, req);
    return this.files.upload(project, body, baseUrlOf(req, this.config.publicUrl));
  }

  /** The upload URL when the storage takes none itself: a multipart form as S3 takes it, answered 204 like S3. */
  @Post('upload-target')
  @HttpCode(204)
  async uploadTarget(@Req() req: Request): Promise<void> {
    await this.files.receive(req);
  }

  @Post('confirm-upload')
  @HttpCode(200)
  async confirm(@Body() body: unknown, @Req() req: Request) {
    const project = await this.project(body, req);
    return this.files.confirm(project, body);
  }

  @Get('uploads')
  async list(@Req() req: Request, @Query('page') page?: string, @Query('page_size') pageSize?: string) {
    const project = (await this.projects.authenticateKey(apiKeyOf(req) ?? xAuthToken(req)))._id;
    return this.files.list(project, { page: whole(page, 'page', 1), pageSize: whole(pageSize, 'page_size', 50) });
  }

  /** A stored file by signed URL (local storage; S3 presigns its own). */
  @Get('objects/:file')
  async object(@Param('file') file: string, @Query() query: Record<string, unknown>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const m = /^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.([a-z0-9]{1,10})$/.exec(file);
    if (!m) throw notFound('no such file');
    const params = this.urls.verifySignedApiUrl(req.path, query);
    const { size, body } = await this.files.open(m[1], m[2]);
    const type = params.type && /^[a-z]+\/[a-z0-9.+-]+$/i.test(params.type) ? params.type : 'application/octet-stream';
    res.status(200).set({ 'Content-Type': type, 'Content-Length': String(size), 'Content-Disposition': attachmentDisposition(params.filename || file), 'Cache-Control': 'private, max-age=0' });
    await pipeline(body, res).catch(() => undefined); // a client that went away
  }

  private async project(body: unknown, req: Request): Promise<string> {
    const fromBody = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).api_key : undefined;
    if (fromBody !== undefined && typeof fromBody !== 'string') throw badInput('api_key must be a string', [{ field: 'api_key', message: 'not a string' }]);
    return (await this.projects.authenticateKey(fromBody || apiKeyOf(req) || xAuthToken(req)))._id;
  }
}

/** VNTANA's header: `X-AUTH-TOKEN: Bearer <key>`. */
function xAuthToken(req: Request): string | undefined {
  const raw = req.headers['x-auth-token'];
  if (typeof raw !== 'string') return undefined;
  return raw.replace(/^Bearer\s+/i, '').trim() || undefined;
}

function whole(raw: string | undefined, field: string, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) throw badInput(`${field} must be a whole number ≥ 1`, [{ field, message: 'not a whole number ≥ 1' }]);
  return Number(raw);
}
