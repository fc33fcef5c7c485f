import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { baseUrlOf } from '../delivery/http-delivery';
import { farmKeyOf } from '../farm/farm-auth';
import { sendStored } from '../farm/stored-download';
import { ProductsService } from './products.service';

/** VNTANA's products and renders (key: `X-AUTH-TOKEN: Bearer <key>`, or Montage's headers). */
@Controller('v1/products')
export class ProductsController {
  constructor(
    private readonly products: ProductsService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  @Post()
  @HttpCode(200)
  create(@Body() body: unknown, @Req() req: Request) {
    return this.products.create(farmKeyOf(req, body), body);
  }

  @Get()
  list(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return this.products.list(farmKeyOf(req, query), query);
  }

  // Before ':uuid' so that "renders" is never read as a uuid.
  @Post('renders')
  @HttpCode(200)
  renders(@Body() body: unknown, @Req() req: Request) {
    return this.products.requestRenders(farmKeyOf(req), body);
  }

  @Get(':uuid')
  get(@Param('uuid') uuid: string, @Req() req: Request) {
    return this.products.get(farmKeyOf(req), uuid);
  }

  @Get(':uuid/attachments')
  attachments(@Param('uuid') uuid: string, @Req() req: Request) {
    return this.products.attachments(farmKeyOf(req), uuid, baseUrlOf(req, this.config.publicUrl));
  }

  /** A signed attachment URL (no key needed). */
  @Get(':uuid/attachments/:attachment')
  async attachment(@Param('uuid') uuid: string, @Param('attachment') attachment: string, @Query() query: Record<string, unknown>, @Res() res: Response) {
    const found = await this.products.attachment(uuid, attachment, query);
    await sendStored(res, found);
  }
}
