import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { badInput } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { apiKeyOf, baseUrlOf } from '../delivery/http-delivery';
import { BatchesService } from './batches.service';

/** Batch renders: many items of one movie, results to a webhook in groups (API key required). */
@Controller('v2/batch')
export class BatchesController {
  constructor(
    private readonly batches: BatchesService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Post(':project')
  @HttpCode(201)
  create(@Param('project') project: string, @Body() body: unknown, @Req() req: Request) {
    return this.batches.create(project, apiKeyOf(req), body, baseUrlOf(req, this.config.publicUrl));
  }

  @Get(':uuid')
  get(@Param('uuid') uuid: string, @Req() req: Request, @Query('offset') offset?: string, @Query('limit') limit?: string) {
    return this.batches.get(uuid, apiKeyOf(req), { offset: page(offset, 'offset', 0), limit: page(limit, 'limit', 1) });
  }
}

function page(raw: string | undefined, name: string, min: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < min) throw badInput(`${name} must be a whole number ≥ ${min}`, [{ field: name, message: 'not a whole number' }]);
  return Number(raw);
}
