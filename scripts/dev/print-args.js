// Prints the ffmpeg command Montage would run, for debugging a template:
//   node scripts/dev/print-args.js <project> <movie> <format> [from] [to] [out]
require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { RenderModule } = require('../../dist/src/render/render.module');
const { RenderService } = require('../../dist/src/render/render.service');
const { buildRenderArgs } = require('../../dist/src/compiler/ffmpeg-args');
(async () => {
  const app = await NestFactory.createApplicationContext(RenderModule, { logger: false });
  const [project, movie, format, from, to, out] = process.argv.slice(2);
  const plan = await app.get(RenderService).plan({ project, movie, params: {} });
  const args = buildRenderArgs(plan, { from: +(from ?? 0), to: +(to ?? plan.totalFrames) }, { format, videoOnly: process.env.VIDEO_ONLY === '1' }, out ?? `/tmp/args.${format}`);
  console.log(args.map((a) => (/[ ;'[|]/.test(a) ? `"${a}"` : a)).join(' '));
  await app.close();
})();
