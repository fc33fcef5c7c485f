import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { apiKeyOf } from '../delivery/http-delivery';
import { WebhookEndpointsService } from './webhook-endpoints.service';

/** A project's webhook endpoints, their delivery log and replays (the project's API key). */
@Controller('v2/webhooks')
export class WebhooksController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  /** 201 with the endpoint and its secret: the only time the secret is shown. */
  @Post(':project')
  @HttpCode(201)
  create(@Param('project') project: string, @Body() body: unknown, @Req() req: Request) {
    return this.endpoints.create(project, apiKeyOf(req), body);
  }

  @Get(':project')
  list(@Param('project') project: string, @Req() req: Request) {
    return this.endpoints.list(project, apiKeyOf(req));
  }

  @Get(':project/:id')
  get(@Param('project') project: string, @Param('id') id: string, @Req() req: Request) {
    return this.endpoints.get(project, apiKeyOf(req), id);
  }

  @Patch(':project/:id')
  update(@Param('project') project: string, @Param('id') id: string, @Body() body: unknown, @Req() req: Request) {
    return this.endpoints.update(project, apiKeyOf(req), id, body);
  }

  @Delete(':project/:id')
  remove(@Param('project') project: string, @Param('id') id: string, @Req() req: Request) {
    return this.endpoints.remove(project, apiKeyOf(req), id);
  }

  /** A new secret, shown once. */
  @Post(':project/:id/rotate-secret')
  @HttpCode(200)
  rotate(@Param('project') project: string, @Param('id') id: string, @Body() body: unknown, @Req() req: Request) {
    return this.endpoints.rotateSecret(project, apiKeyOf(req), id, body);
  }

  @Get(':project/:id/deliveries')
  deliveries(@Param('project') project: string, @Param('id') id: string, @Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.endpoints.deliveries(project, apiKeyOf(req), id, query ?? {});
  }

  /** 202: the message goes again (same webhook-id) on a fresh retry schedule. */
  @Post(':project/:id/deliveries/:message/replay')
  @HttpCode(202)
  replay(@Param('project') project: string, @Param('id') id: string, @Param('message') message: string, @Req() req: Request) {
    return this.endpoints.replay(project, apiKeyOf(req), id, message);
  }
}
