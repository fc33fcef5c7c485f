import { Body, Controller, Delete, Get, Param, Put, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { apiKeyOf } from '../delivery/http-delivery';
import { ConnectionsService } from './connections.service';

/** A project's named upload destinations (API key required). Secrets go in, never out. */
@Controller('v2/connections')
export class ConnectionsController {
  constructor(private readonly connections: ConnectionsService) {}

  @Put(':project/:name')
  async put(@Param('project') project: string, @Param('name') name: string, @Body() body: unknown, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const { view, created } = await this.connections.put(project, apiKeyOf(req), name, body);
    res.status(created ? 201 : 200);
    return view;
  }

  @Get(':project')
  list(@Param('project') project: string, @Req() req: Request) {
    return this.connections.list(project, apiKeyOf(req));
  }

  @Get(':project/:name')
  get(@Param('project') project: string, @Param('name') name: string, @Req() req: Request) {
    return this.connections.get(project, apiKeyOf(req), name);
  }

  @Delete(':project/:name')
  remove(@Param('project') project: string, @Param('name') name: string, @Req() req: Request) {
    return this.connections.remove(project, apiKeyOf(req), name);
  }
}
