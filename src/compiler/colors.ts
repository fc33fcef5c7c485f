/** `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa` → the long form without `#` (`rrggbb` or `rrggbbaa`). */
export function expandHex(hex: string): string {
  const h = hex.replace(/^#/, '');
  return h.length <= 4 ? [...h].map((c) => c + c).join('') : h;
}

/** A checked hex colour's channels: `rgb` as `#rrggbb`, r, g, b 0–255, alpha 0–1 (1 when it has none). */
export function rgbaOf(hex: string): { rgb: string; r: number; g: number; b: number; a: number } {
  const h = expandHex(hex);
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
  return { rgb: `#${h.slice(0, 6)}`, r, g, b, a: h.length === 8 ? parseInt(h.slice(6, 8), 16) / 255 : 1 };
}
