import { Module } from '@nestjs/common';
import { HealthController } from './health/health.controller';
import { RenderModule } from './render/render.module';

@Module({
  imports: [RenderModule],
  controllers: [HealthController],
})
export class AppModule {}
