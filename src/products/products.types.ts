import type { StoredDocument } from '../repositories/document-store/port';

/** A stored render of a product (VNTANA's "attachment"): a still per view, the turntable MP4, its GIF. */
export interface ProductAttachment {
  uuid: string;
  type: 'RENDER' | 'TURNTABLE' | 'TURNTABLE_GIF';
  view?: string;
  format: string;
  width: number;
  height: number;
  size: number;
  storageKey: string;
  ext: string;
  /** The render request that made it. */
  productRender: string;
  createdAt: string;
}

/** A 3D product: an uploaded glTF/GLB model (kind `model`) with a name. `_id` is its uuid. */
export interface ProductDoc extends StoredDocument {
  project: string;
  name: string;
  description: string;
  /** The model's upload id. */
  upload: string;
  asset: { assetOriginalName: string; assetOriginalSize: number };
  attachments: ProductAttachment[];
  /** The newest render request (`prr_…`): VNTANA's generationRequestUuid. */
  lastRender?: string;
  createdAt: string;
  updatedAt: string;
}

export interface TurntableOptions {
  includeGif: boolean;
  imageCount: number;
  frameRate: number;
  width: number;
  height: number;
}

export type ProductRenderStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** One product's part of a POST /v1/products/renders: a stills job, a turntable job, their encode. */
export interface ProductRenderDoc extends StoredDocument {
  project: string;
  product: string;
  image: { width: number; height: number; format: 'PNG' | 'JPG' | 'WEBP' };
  turntable: TurntableOptions;
  stillsJob: string;
  turntableJob: string;
  renders: ProductRenderStatus;
  turntableStatus: ProductRenderStatus;
  error?: string;
  createdAt: string;
  updatedAt: string;
}

export const PRODUCT_RENDERS_COLLECTION = 'product_renders';
