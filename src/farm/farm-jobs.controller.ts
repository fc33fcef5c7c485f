import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { baseUrlOf } from '../delivery/http-delivery';
import { farmKeyOf } from './farm-auth';
import { FarmJobsService } from './farm-jobs.service';
import { sendStored } from './stored-download';

/**
 * Rentaflop's rendering API under `/v1/farm/` (their example runs with only the base URL
 * changed), Fox's task queries, and Montage's own job routes. Every answer carries
 * `status: 200`, as Rentaflop's do.
 */
@Controller('v1/farm')
export class FarmJobsController {
  constructor(
    private readonly jobs: FarmJobsService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Get('health')
  health() {
    return { status: 200 };
  }

  @Post('render')
  @HttpCode(200)
  render(@Body() body: unknown, @Req() req: Request) {
    return this.jobs.render(farmKeyOf(req, body), body);
  }

  @Post('progress')
  @HttpCode(200)
  progress(@Body() body: unknown, @Req() req: Request) {
    return this.jobs.progress(farmKeyOf(req, body), body);
  }

  @Post('download')
  @HttpCode(200)
  download(@Body() body: unknown, @Req() req: Request) {
    return this.jobs.download(farmKeyOf(req, body), body, baseUrlOf(req, this.config.publicUrl));
  }

  @Post('stop')
  @HttpCode(200)
  stopByBody(@Body() body: unknown, @Req() req: Request) {
    return this.jobs.stop(farmKeyOf(req, body), jobIdOf(body));
  }

  @Post('retry')
  @HttpCode(200)
  retryByBody(@Body() body: unknown, @Req() req: Request) {
    return this.jobs.retry(farmKeyOf(req, body), jobIdOf(body));
  }

  // Fox's shapes: submit_task and get_tasks.
  @Post('tasks')
  @HttpCode(200)
  async submitTask(@Body() body: unknown, @Req() req: Request) {
    const created = await this.jobs.render(farmKeyOf(req, body), body);
    return { ...created, task_id: created.job_id };
  }

  @Get('tasks')
  tasks(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.jobs.tasks(farmKeyOf(req, query), query);
  }

  @Get('tasks/:id')
  task(@Param('id') id: string, @Query('has_frames') hasFrames: unknown, @Req() req: Request) {
    return this.jobs.task(farmKeyOf(req), id, hasFrames);
  }

  @Get('jobs/:id')
  view(@Param('id') id: string, @Req() req: Request) {
    return this.jobs.view(farmKeyOf(req), id);
  }

  @Post('jobs/:id/stop')
  @HttpCode(200)
  stop(@Param('id') id: string, @Body() body: unknown, @Req() req: Request) {
    return this.jobs.stop(farmKeyOf(req, body), id);
  }

  @Post('jobs/:id/retry')
  @HttpCode(200)
  retry(@Param('id') id: string, @Body() body: unknown, @Req() req: Request) {
    return this.jobs.retry(farmKeyOf(req, body), id);
  }

  @Delete('jobs/:id')
  remove(@Param('id') id: string, @Req() req: Request) {
    return this.jobs.remove(farmKeyOf(req), id);
  }

  @Get('jobs/:id/manifest')
  manifest(@Param('id') id: string, @Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.jobs.manifest(farmKeyOf(req), id, query, baseUrlOf(req, this.config.publicUrl));
  }

  /** The signed zip URL of POST /download: no key needed (Rentaflop's example fetches it with a plain GET). */
  @Get('jobs/:id/frames.zip')
  async zip(@Param('id') id: string, @Query() query: Record<string, unknown>, @Res() res: Response) {
    const { job, entries } = await this.jobs.zipEntries(id, query);
    res.status(200);
    res.setHeader('Content-Type', 'application/zip');
    res.setHeader('Content-Disposition', `attachment; filename="${job._id}.zip"`);
    res.setHeader('Cache-Control', 'private, no-store');
    const stop = new AbortController();
    res.on('close', () => stop.abort());
    // Headers are out: a failure now can only cut the stream (the client's unzip sees it).
    await this.jobs.writeZip(entries, res, stop.signal).catch(() => res.destroy());
  }

  @Get('jobs/:id/frames/:frame')
  async frame(@Param('id') id: string, @Param('frame') frame: string, @Query() query: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    const found = await this.jobs.frame(farmKeyOf(req), id, frame, query);
    await sendStored(res, found);
  }
}


function jobIdOf(body: unknown): unknown {
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).job_id : undefined;
}
