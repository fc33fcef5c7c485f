import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { renderContext } from '../helpers/render-context';

type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext({ templatesDir: path.join(__dirname, '..', 'fixtures', 'render-errors') });
});
afterAll(() => ctx.close());

describe('errors found while rendering name the template file', () => {
  it('an SVG that is well-formed but that librsvg refuses (a size of 0) is a 400 naming the .svg.hbs', async () => {
    await ctx.renders.render({ project: 'r', movie: 'svg-refused', params: {}, profile: { format: 'png' } }, ctx.out('ok.png'));
    const err = await ctx.renders
      .render({ project: 'r', movie: 'svg-refused', params: { size: 0 }, profile: { format: 'png' } }, ctx.out('refused.png'))
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).kind).toBe('bad_input');
    expect((err as MontageError).details[0].field).toBe('r/svg-refused/badge.svg.hbs');
    expect((err as MontageError).message).toMatch(/r\/svg-refused\/badge\.svg\.hbs: the SVG could not be/);
  });
});
