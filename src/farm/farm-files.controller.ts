import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { badInput } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { baseUrlOf } from '../delivery/http-delivery';
import { farmKeyOf } from './farm-auth';
import { FarmFilesService } from './farm-files.service';
import { FarmStore } from './farm-store';

/**
 * Uploads of the farm: Rentaflop's `upload` → (post the file) → `confirm-upload`, with the key
 * in the body (`api_key`) or a header; the signed upload form needs none.
 */
@Controller('v1/farm')
export class FarmFilesController {
  constructor(
    private readonly files: FarmFilesService,
    private readonly store: FarmStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Post('upload')
  @HttpCode(200)
  async upload(@Body() body: unknown, @Req() req: Request) {
    const project = await this.project(body, req);
    return this.files.upload(project, body, baseUrlOf(req, this.config.publicUrl));
  }

  /** Fox's folder upload: every file's hash at once; those the project has are skipped, the others get upload URLs. */
  @Post('upload-folder')
  @HttpCode(200)
  async uploadFolder(@Body() body: unknown, @Req() req: Request) {
    const project = await this.project(body, req);
    return this.files.uploadFolder(project, body, baseUrlOf(req, this.config.publicUrl));
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
    const project = (await this.store.authenticateKey(farmKeyOf(req)))._id;
    return this.files.list(project, { page: whole(page, 'page', 1), pageSize: whole(pageSize, 'page_size', 50) });
  }

  private async project(body: unknown, req: Request): Promise<string> {
    return (await this.store.authenticateKey(farmKeyOf(req, body)))._id;
  }
}

function whole(raw: string | undefined, field: string, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) throw badInput(`${field} must be a whole number ≥ 1`, [{ field, message: 'not a whole number ≥ 1' }]);
  return Number(raw);
}
