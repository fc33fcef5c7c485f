/**
 * The family names a font file declares, read from its OpenType `name` table. Pure: bytes in,
 * names or a reason out. Why not `fc-scan`: no process per font, the same answer on every
 * machine whatever its fontconfig, and a hostile file is only ever bytes to bounds-check.
 */
export type FontNames = { families: string[] } | { problem: string };

const SFNT_VERSIONS = new Set([0x00010000, 0x4f54544f /* OTTO */, 0x74727565 /* true */]);
const TTC = 0x74746366; // ttcf
const WOFF = new Set([0x774f4646, 0x774f4632]); // wOFF, wOF2
const NAME = 0x6e616d65; // name
const FAMILY = 1; // the style-linked family: what selects exactly this file's face
const TYPOGRAPHIC_FAMILY = 16;

export function fontFamilies(bytes: Uint8Array): FontNames {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => (at + 2 <= view.byteLength ? view.getUint16(at) : undefined);
  const u32 = (at: number) => (at + 4 <= view.byteLength ? view.getUint32(at) : undefined);
  const tag = u32(0);
  if (tag === undefined) return { problem: 'is not a font (too short)' };
  if (WOFF.has(tag)) return { problem: 'is a web font (WOFF): ship the .ttf or .otf' };
  let fontOffset = 0;
  if (tag === TTC) {
    const first = u32(12); // the first font of a collection is the one Pango is given
    if (first === undefined) return { problem: 'is a damaged font collection' };
    fontOffset = first;
  } else if (!SFNT_VERSIONS.has(tag)) return { problem: 'is not a TrueType or OpenType font' };
  if (fontOffset !== 0 && !SFNT_VERSIONS.has(u32(fontOffset) ?? -1)) return { problem: 'is a damaged font collection' };

  const numTables = u16(fontOffset + 4);
  if (numTables === undefined) return { problem: 'is a damaged font (no table directory)' };
  let nameAt: number | undefined;
  let nameLength = 0;
  for (let i = 0; i < numTables; i++) {
    const record = fontOffset + 12 + i * 16;
    if (u32(record) === NAME) {
      nameAt = u32(record + 8);
      nameLength = u32(record + 12) ?? 0;
      break;
    }
  }
  if (nameAt === undefined || nameAt + nameLength > view.byteLength || nameLength < 6) return { problem: 'is a damaged font (no name table)' };

  const count = u16(nameAt + 2) ?? 0;
  const storage = nameAt + (u16(nameAt + 4) ?? 0);
  // Ranked: Windows US English, any Windows or Unicode, Mac English.
  const found: Array<{ id: number; rank: number; name: string }> = [];
  for (let i = 0; i < count; i++) {
    const r = nameAt + 6 + i * 12;
    if (r + 12 > nameAt + nameLength) break;
    const [platform, encoding, language, id, length, offset] = [0, 2, 4, 6, 8, 10].map((k) => view.getUint16(r + k));
    if (id !== FAMILY && id !== TYPOGRAPHIC_FAMILY) continue;
    const start = storage + offset;
    if (length === 0 || start + length > view.byteLength) continue;
    const raw = bytes.subarray(start, start + length);
    let name: string | undefined;
    let rank = 9;
    if (platform === 3 || platform === 0) {
      name = utf16be(raw);
      rank = platform === 3 && language === 0x409 ? 0 : 1;
    } else if (platform === 1 && encoding === 0) {
      name = String.fromCharCode(...raw); // Mac Roman; family names are ASCII in practice
      rank = language === 0 ? 2 : 3;
    }
    // eslint-disable-next-line no-control-regex -- removing them is the point
    name = name?.replace(/[\u0000-\u001f\u007f]/g, '').trim();
    if (name) found.push({ id, rank, name });
  }
  found.sort((a, b) => (a.id === b.id ? a.rank - b.rank : a.id === FAMILY ? -1 : 1));
  const families = [...new Set(found.map((f) => f.name))];
  return families.length ? { families } : { problem: 'names no font family' };
}

function utf16be(raw: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < raw.length; i += 2) s += String.fromCharCode((raw[i] << 8) | raw[i + 1]);
  return s;
}

/** The font files a template may name in `font.file`. */
export const FONT_FILE = /\.(ttf|otf|ttc)$/i;
