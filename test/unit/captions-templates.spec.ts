import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BlenderScenesService } from '../../src/engines/blender/blender-scenes.service';
import { loadConfig } from '../../src/config/config';
import type { FontsRepository } from '../../src/repositories/fonts.repository';
import { TemplateFilesRepository } from '../../src/repositories/template-files.repository';
import { TemplatesService } from '../../src/templates/templates.service';

// `templates check` on caption layers: sample captions stand in for variables without a default.
let dir: string;
let service: TemplatesService;
const movie = (name: string, yaml: string) => {
  fs.mkdirSync(path.join(dir, 'templates', 'c', name), { recursive: true });
  fs.writeFileSync(path.join(dir, 'templates', 'c', name, 'movie.yaml'), yaml);
};
const layer = (source: string, extra = '') =>
  `canvas: { width: 320, height: 180 }\nvariables:\n  srt: { type: string }\n  words: { type: list, fields: { text: { type: string }, start: { type: number }, end: { type: number } } }\n  n: { type: number }\nscenes:\n  - duration: 2\n    layers:\n      - type: captions\n        source: ${source}\n${extra}`;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-captions-check-'));
  movie('srt', layer('srt'));
  movie('words', layer('words'));
  movie('number', layer('n'));
  movie('font', layer('srt', '        font: { family: Nope Sans }\n'));
  const config = loadConfig({ MONTAGE_TEMPLATES_DIR: path.join(dir, 'templates'), MONTAGE_DATA_DIR: path.join(dir, 'data') }, process.cwd());
  const fonts = { installedFamilies: async () => new Set(['dejavu sans']) } as unknown as FontsRepository;
  service = new TemplatesService(config, new TemplateFilesRepository(), fonts, { check: async () => [] } as unknown as BlenderScenesService);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('templates check: captions layers', () => {
  it.each(['srt', 'words'])('a %s caption variable without a default checks clean', async (name) => {
    expect(await service.check('c', name)).toEqual([]);
  });

  it('a source that is not a string or list variable is named at its line', async () => {
    expect(await service.check('c', 'number')).toEqual([{ field: 'c/number/movie.yaml:10', message: '"n" is not a string or list variable of this movie' }]);
  });

  it('the font family must be installed, as for text', async () => {
    expect(await service.check('c', 'font')).toEqual([{ field: 'c/font/movie.yaml:11', message: expect.stringContaining('"Nope Sans" is not installed') }]);
  });
});
