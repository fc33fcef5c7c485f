import { Module } from '@nestjs/common';
import { AssetCacheService } from '../assets/asset-cache.service';
import { MediaVerifier } from '../assets/media-verifier';
import { ASSET_FILE_STORE, MEDIA_PROBE } from '../assets/asset-cache.types';
import { LocalAssetFileStore } from '../repositories/asset-file-store.repository';
import { FontsRepository } from '../repositories/fonts.repository';
import { HttpFetchRepository } from '../repositories/http-fetch.repository';
import { MediaRepository } from '../repositories/media.repository';
import { RasterRepository } from '../repositories/raster.repository';
import { LottieRepository } from '../repositories/lottie.repository';
import { TemplateFilesRepository } from '../repositories/template-files.repository';
import { WorkFilesRepository } from '../repositories/work-files.repository';
import { TemplatesService } from '../templates/templates.service';
import { BlenderRepository } from '../repositories/blender.repository';
import { BlenderScenesService } from '../engines/blender/blender-scenes.service';
import { MediaPreparationService } from './media-preparation.service';
import { RenderService } from './render.service';

/**
 * The renderer core: templates, compiler, media preparation and ffmpeg. No HTTP, no database,
 * so the CLI, the API and render nodes can all load it.
 */
@Module({
  providers: [
    TemplateFilesRepository,
    FontsRepository,
    HttpFetchRepository,
    MediaRepository,
    RasterRepository,
    LottieRepository,
    WorkFilesRepository,
    { provide: ASSET_FILE_STORE, useClass: LocalAssetFileStore },
    MediaVerifier,
    { provide: MEDIA_PROBE, useExisting: MediaVerifier },
    AssetCacheService,
    BlenderRepository,
    BlenderScenesService,
    TemplatesService,
    MediaPreparationService,
    RenderService,
  ],
  exports: [TemplatesService, RenderService, MediaRepository, WorkFilesRepository, MediaPreparationService, BlenderRepository, BlenderScenesService],
})
export class RenderModule {}
