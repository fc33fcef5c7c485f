import type { Readable } from 'node:stream';
import type { OutputFormat } from '../formats/output-formats';

/** What a GET sends: a stored output (with byte ranges), or a render's pieces as they come. */
export type Delivery =
  | { kind: 'stored'; key: string; format: OutputFormat; size: number; contentType: string; open: (range?: { start: number; end: number }) => Promise<Readable> }
  | { kind: 'live'; key: string; format: OutputFormat; contentType: string; body: AsyncGenerator<Buffer> };

export type StoredDelivery = Extract<Delivery, { kind: 'stored' }>;
