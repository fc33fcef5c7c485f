import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { apiKeyOf, baseUrlOf } from '../delivery/http-delivery';
import { TokensService } from './tokens.service';

/** Creating and deleting tokens (API key required), and their progress (the token is enough). */
@Controller()
export class TokensController {
  constructor(
    private readonly tokens: TokensService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  /** A token whose first GET renders; with `async: true`, rendering starts now (201). */
  @Post('v2/render/:projectId')
  async render(@Param('projectId') projectId: string, @Body() body: unknown, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const created = await this.tokens.createToken(projectId, apiKeyOf(req), body, baseUrlOf(req, this.config.publicUrl), true);
    res.status(isAsync(body) ? 201 : 200);
    return created;
  }

  /** The same token without ever starting a render. */
  @Post('v2/token/:projectId')
  @HttpCode(200)
  token(@Param('projectId') projectId: string, @Body() body: unknown, @Req() req: Request) {
    return this.tokens.createToken(projectId, apiKeyOf(req), body, baseUrlOf(req, this.config.publicUrl), false);
  }

  @Get('v2/progress/:token')
  progress(@Param('token') token: string) {
    return this.tokens.progress(token);
  }

  @Delete('v2/token/:token')
  remove(@Param('token') token: string, @Req() req: Request) {
    return this.tokens.deleteToken(token, apiKeyOf(req));
  }
}

function isAsync(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { async?: unknown }).async === true;
}
