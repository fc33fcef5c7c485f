import 'reflect-metadata';
import { type INestApplicationContext, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command, CommanderError, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { badInput, MontageError } from '../common/errors';
import { isOutputFormat, isStillFormat, OUTPUT_FORMATS, type OutputFormat } from '../formats/output-formats';
import { EngineName } from '../engines/engine';
import { EngineRegistry, EnginesModule } from '../engines/engines.module';
import { CliProjectsModule } from '../projects/cli-projects.module';
import { ProjectsService } from '../projects/projects.service';
import { effectiveLimits, type ProjectLimits, SETTABLE_LIMITS } from '../projects/project.types';
import { signedUrl } from '../projects/url-signing';
import { loadConfig } from '../config/config';
import { ConfigModule } from '../config/config.module';
import { killAllChildren } from '../repositories/child-processes';
import { RenderModule } from '../render/render.module';
import { RenderService } from '../render/render.service';
import { TemplatesService } from '../templates/templates.service';
import { localMediaParams, mergeCliParams, parseMovieId } from './parse-params';
import { createProgressReporter } from './progress-reporter';
import { registerWebhookCommands } from './webhooks.commands';

/** The CLI's root module: the configuration and the feature module of the command. */
@Module({})
class CliApp {}

/** Exit codes: 0 done, 1 render failure, 2 bad input (anything the user can fix). */
async function main(argv: string[]): Promise<number> {
  const program = new Command('montage')
    .description('Montage: render movie templates to video')
    .option('--templates <dir>', 'templates folder (default: ./templates or MONTAGE_TEMPLATES_DIR)')
    .option('--data <dir>', 'data folder for caches (default: ./data or MONTAGE_DATA_DIR)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let code = 0;
  /** The configuration: the environment, with --templates and --data over it. */
  const cliConfig = () => {
    const opts = program.opts<{ templates?: string; data?: string }>();
    return loadConfig({
      ...process.env,
      ...(opts.templates ? { MONTAGE_TEMPLATES_DIR: path.resolve(opts.templates) } : {}),
      ...(opts.data ? { MONTAGE_DATA_DIR: path.resolve(opts.data) } : {}),
    });
  };
  /** Runs `fn` in an application context of `module` (after --templates/--data apply), closed afterwards. */
  const withContext = async <T>(module: Type<unknown>, fn: (app: INestApplicationContext) => Promise<T>): Promise<T> => {
    const app = await NestFactory.createApplicationContext({ module: CliApp, imports: [ConfigModule.forRoot(cliConfig()), module] }, { logger: ['error'] });
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  };

  program
    .command('render')
    .description('render a movie, e.g. montage render demo/welcome --param name=Alex --out welcome.mp4')
    .argument('<project/movie>')
    .option('-p, --param <name=value>', 'a variable value (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--params-file <file>', 'a JSON file of variable values (--param wins)')
    .addOption(new Option('-f, --format <format>', 'output format (default: from --out)').choices([...OUTPUT_FORMATS]))
    .requiredOption('-o, --out <file>', 'output file')
    .option('--frame <n>', 'stills: frame number (default: the poster frame)')
    .option('-q, --quality <1-100>', 'jpg/webp quality')
    .option('--from <frame>', 'videos: first frame')
    .option('--to <frame>', 'videos: frame after the last')
    .action(async (id: string, opts: Record<string, string | string[] | undefined>) => {
      const { project, movie } = parseMovieId(id);
      const out = path.resolve(String(opts.out));
      const format = (opts.format ?? path.extname(out).slice(1).toLowerCase().replace('jpeg', 'jpg')) as OutputFormat;
      if (!isOutputFormat(format)) {
        throw badInput(`cannot tell the format from "${path.basename(out)}"; use --format ${OUTPUT_FORMATS.join('|')}`, [{ field: '--format', message: 'unknown format' }]);
      }
      let fileParams: unknown;
      if (opts.paramsFile) {
        try {
          fileParams = JSON.parse(fs.readFileSync(String(opts.paramsFile), 'utf8'));
        } catch (err) {
          throw badInput(`cannot read params file ${opts.paramsFile}: ${(err as Error).message}`, [{ field: '--params-file', message: 'unreadable or not JSON' }]);
        }
      }
      const given = mergeCliParams((opts.param as string[]) ?? [], fileParams);
      const progress = createProgressReporter(process.stderr, `${project}/${movie} → ${format}`);
      await withContext(EnginesModule, async (app) => {
        const started = Date.now();
        if (format === 'vtt') {
          // Captions come from the resolved movie: nothing to render.
          const vtt = await app.get(RenderService).captionsVtt(project, movie, given);
          fs.writeFileSync(out, vtt);
          process.stderr.write(`wrote ${path.relative(process.cwd(), out) || out} (WebVTT, ${vtt.split('\n').filter((l) => l.includes(' --> ')).length} cues)\n`);
          return;
        }
        const template = await app.get(TemplatesService).load(project, movie);
        const isFile = (file: string) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
        const params = localMediaParams(given, template.spec.variables, process.cwd(), isFile);
        if (template.spec.engine === 'blender') {
          // Blender's picture comes from its engine; the frames count from Blender's saved frames.
          const { canvas } = template.spec;
          const total = Math.round((template.spec.duration ?? 0) * canvas.fps);
          const from = intOption(opts.from, '--from', 0) ?? 0;
          const to = intOption(opts.to, '--to', 1) ?? total;
          const still = isStillFormat(format);
          const result = await app.get(EngineRegistry).get(EngineName.Blender).render(
            {
              project,
              movie,
              params,
              profile: { format, quality: intOption(opts.quality, '--quality', 1, 100) },
              frame: intOption(opts.frame, '--frame', 0),
              range: { from, to },
            },
            out,
            { onFrames: (done) => progress.update(done, still ? 1 : to - from) },
          );
          progress.stop();
          const { width, height, frames } = await app.get(RenderService).outputFacts(out);
          process.stderr.write(
            `wrote ${path.relative(process.cwd(), out) || out} (${format}, ${width}×${height}, ${frames} frame${frames === 1 ? '' : 's'}, Blender, ${(result.bytes / 1024).toFixed(0)} KiB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          );
          return;
        }
        const renders = app.get(RenderService);
        renders.allowLocalFiles(); // this process's user gave the `@path` files: theirs to read
        const result = await renders.render(
          {
            project,
            movie,
            params,
            profile: { format, quality: intOption(opts.quality, '--quality', 1, 100) },
            frame: intOption(opts.frame, '--frame', 0),
            range: { from: intOption(opts.from, '--from', 0), to: intOption(opts.to, '--to', 1) },
          },
          out,
          (p) => p.phase !== 'preparing' && progress.update(p.framesDone, p.totalFrames),
        );
        progress.stop();
        // What the file holds, not what the movie asked for: a GIF is scaled down and has fewer frames per second.
        const { width, height, frames } = await renders.outputFacts(result.output);
        process.stderr.write(
          `wrote ${path.relative(process.cwd(), out) || out} (${format}, ${width}×${height}, ${frames} frame${frames === 1 ? '' : 's'}, ${(result.bytes / 1024).toFixed(0)} KiB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
        );
      }).finally(() => progress.stop());
    });

  const templates = program.command('templates').description('list and check movie templates');
  templates
    .command('check')
    .description('validate every template; prints each problem as file:line: message')
    .action(async () => {
      await withContext(RenderModule, async (app) => {
        const results = await app.get(TemplatesService).checkAll();
        for (const r of results) {
          if (r.errors.length === 0) process.stdout.write(`ok    ${r.id}\n`);
          for (const e of r.errors) process.stdout.write(`${e.field}: ${e.message}\n`);
        }
        const bad = results.filter((r) => r.errors.length > 0).length;
        process.stdout.write(`${results.length} template${results.length === 1 ? '' : 's'} checked, ${bad} with errors\n`);
        if (bad > 0) code = 2;
        if (results.length === 0) {
          process.stderr.write('no templates found\n');
          code = 2;
        }
      });
    });
  templates
    .command('list')
    .description('list projects and movies with their variables')
    .action(async () => {
      await withContext(RenderModule, async (app) => {
        const service = app.get(TemplatesService);
        for (const project of await service.listProjects()) {
          for (const movie of await service.listMovies(project)) {
            const t = await service.load(project, movie);
            const vars = Object.entries(t.spec.variables).map(([k, v]) => `${k}:${v.type}${v.required ? '!' : ''}`);
            process.stdout.write(`${project}/${movie}  ${t.spec.canvas.width}×${t.spec.canvas.height}@${t.spec.canvas.fps}  ${vars.join(' ')}\n`);
          }
        }
      });
    });

  const projects = program.command('projects').description('projects and their API keys');
  projects
    .command('create')
    .description('create a project and print its API key (shown once, stored hashed)')
    .argument('<name>')
    .option('--public', 'accept unsigned /v1/render URLs for this project')
    .action(async (name: string, opts: { public?: boolean }) => {
      await withContext(CliProjectsModule, async (app) => {
        const { project, apiKey } = await app.get(ProjectsService).create(name, { public: !!opts.public });
        process.stdout.write(`project:        ${project._id}\napi key:        ${apiKey}\nsigning secret: ${project.signingSecret}\n`);
        process.stderr.write('keep the API key now: only its hash is stored\n');
      });
    });
  projects
    .command('add-key')
    .description('give a project one more API key (printed once)')
    .argument('<name>')
    .action(async (name: string) => {
      await withContext(CliProjectsModule, async (app) => {
        process.stdout.write(`${await app.get(ProjectsService).addKey(name)}\n`);
      });
    });
  projects
    .command('list')
    .description('list projects')
    .action(async () => {
      await withContext(CliProjectsModule, async (app) => {
        for (const p of await app.get(ProjectsService).list()) {
          process.stdout.write(`${p._id}  keys: ${p.keyHashes.length}  ${p.public ? 'public' : 'signed URLs'}  since ${p.createdAt}\n`);
        }
      });
    });

  const flag = (limit: string) => limit.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const limitsCommand = projects
    .command('limits')
    .description("show or set a project's rate limits, quotas and retention (0: no limit; without a value of its own, the service's setting applies)")
    .argument('<name>')
    .option('--unset <limit...>', 'go back to the service setting for these (names as printed)');
  for (const limit of SETTABLE_LIMITS) limitsCommand.option(`--${flag(limit)} <n>`, `set ${limit}`);
  limitsCommand.action(async (name: string, opts: Record<string, string | string[] | undefined>) => {
    const set: Partial<Record<keyof ProjectLimits, number>> = {};
    for (const limit of SETTABLE_LIMITS) {
      const raw = opts[limit];
      if (raw === undefined) continue;
      if (!/^\d+$/.test(String(raw))) throw badInput(`--${flag(limit)} must be a whole number ≥ 0`, [{ field: `--${flag(limit)}`, message: 'not a whole number' }]);
      set[limit] = Number(raw);
    }
    await withContext(CliProjectsModule, async (app) => {
      const service = app.get(ProjectsService);
      const unset = (opts.unset as string[] | undefined) ?? [];
      const project = Object.keys(set).length || unset.length ? await service.setLimits(name, set, unset) : await service.get(name);
      const effective = effectiveLimits(project, cliConfig());
      for (const limit of SETTABLE_LIMITS) {
        const own = project.limits[limit] !== undefined;
        process.stdout.write(`${limit.padEnd(20)} ${String(effective[limit]).padStart(16)}${own ? '' : '  (service setting)'}${effective[limit] === 0 ? '  no limit' : ''}\n`);
      }
    });
  });

  program
    .command('sign-url')
    .description('make a signed direct-render URL: montage sign-url demo/welcome.mp4 --param name=Alex --base https://host')
    .argument('<project/movie.ext>')
    .option('-p, --param <name=value>', 'a variable value (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--frame <n>', 'stills: frame number')
    .option('-q, --quality <1-100>', 'jpg/webp quality')
    .option('--base <url>', 'where the service is reachable', 'http://localhost:8080')
    .action(async (target: string, opts: { param: string[]; base: string; frame?: string; quality?: string }) => {
      const m = /^([^/]+)\/([^/.]+)\.([a-z0-9]+)$/.exec(target);
      if (!m || !isOutputFormat(m[3])) {
        throw badInput(`expected <project>/<movie>.<ext> with ext one of ${OUTPUT_FORMATS.join(', ')}`, [{ field: 'target', message: 'bad shape' }]);
      }
      const params = mergeCliParams(opts.param, undefined) as Record<string, string>;
      if (opts.frame !== undefined) params.frame = String(intOption(opts.frame, '--frame', 0));
      if (opts.quality !== undefined) params.q = String(intOption(opts.quality, '--quality', 1, 100));
      await withContext(CliProjectsModule, async (app) => {
        const project = await app.get(ProjectsService).get(m[1]);
        process.stdout.write(`${signedUrl(opts.base, m[1], m[2], m[3], params, project.signingSecret)}\n`);
      });
    });

  registerWebhookCommands(program);

  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof MontageError) {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.details.length > 1) for (const d of err.details) process.stderr.write(`  ${d.field}: ${d.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

function intOption(raw: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw badInput(`${name} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`, [{ field: name, message: 'out of range' }]);
  return n;
}

// Encoders run in process groups of their own (a service must stop them in order): a Ctrl-C
// reaches the CLI only, which stops them before it exits, whether or not setpriv is there.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    killAllChildren('SIGKILL');
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal]);
  });
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
