import type { ScalarVariable, Variable } from '../templates/movie.schema';

/**
 * How the page draws one input. The browser only renders these and never validates: no
 * maxlength or min/max attributes either, so what is typed reaches the API, whose 400 is the judge.
 */
export type FieldKind = 'text' | 'textarea' | 'number' | 'checkbox' | 'color' | 'url' | 'select' | 'list';

export interface FormField {
  /** The param's name; for a list item's field, the field's name within the item. */
  name: string;
  label: string;
  description?: string;
  kind: FieldKind;
  /** image, video or audio: a URL field. */
  media?: 'image' | 'video' | 'audio';
  required: boolean;
  /** The template's default: the field starts with it, and an unchanged value is not sent. */
  default?: unknown;
  /** enum values */
  options?: Array<string | number>;
  /** The constraints in words, shown under the label. */
  hint?: string;
  /** list: the item's fields (objects) or its single field (`of`, named "value"). */
  item?: FormField[];
  /** list of scalars: items are plain values, not objects */
  scalarItems?: boolean;
  minItems?: number;
  maxItems?: number;
}

const MEDIA = new Set(['image', 'video', 'audio']);
/** Longer text (an SRT, a paragraph) gets a textarea. */
const TEXTAREA_FROM = 120;

/** The form for a movie's variables, in the template's order. */
export function formFields(variables: Record<string, Variable>): FormField[] {
  return Object.entries(variables).map(([name, v]) => fieldOf(name, v));
}

function fieldOf(name: string, v: Variable): FormField {
  if (v.type === 'list') {
    const scalarItems = !v.fields;
    const item = v.fields ? Object.entries(v.fields).map(([n, f]) => scalarField(n, f)) : [scalarField('value', v.of ?? { type: 'string', required: false })];
    const hint = [
      v.minItems !== undefined ? `at least ${v.minItems}` : '',
      v.maxItems !== undefined ? `at most ${v.maxItems}` : '',
    ].filter(Boolean).join(', ');
    return {
      name,
      label: v.label ?? name,
      description: v.description,
      kind: 'list',
      required: v.required,
      default: v.default,
      hint: hint ? `${hint} items` : undefined,
      item,
      scalarItems,
      minItems: v.minItems,
      maxItems: v.maxItems,
    };
  }
  return scalarField(name, v);
}

function scalarField(name: string, v: ScalarVariable): FormField {
  const base = { name, label: v.label ?? name, description: v.description, required: v.required, default: v.default };
  const hints: string[] = [];
  if (v.required) hints.push('required');
  if (MEDIA.has(v.type)) {
    return { ...base, kind: 'url', media: v.type as FormField['media'], hint: [...hints, `http(s) URL of ${v.type === 'image' ? 'an' : 'a'} ${v.type}`].join('; ') };
  }
  switch (v.type) {
    case 'number': {
      if (v.integer) hints.push('whole number');
      if (v.min !== undefined && v.max !== undefined) hints.push(`${v.min} to ${v.max}`);
      else if (v.min !== undefined) hints.push(`≥ ${v.min}`);
      else if (v.max !== undefined) hints.push(`≤ ${v.max}`);
      return { ...base, kind: 'number', hint: hints.join('; ') || undefined };
    }
    case 'boolean':
      return { ...base, kind: 'checkbox', hint: hints.join('; ') || undefined };
    case 'color':
      return { ...base, kind: 'color', hint: [...hints, '#rrggbb or #rrggbbaa'].join('; ') };
    case 'enum':
      return { ...base, kind: 'select', options: v.values ?? [], hint: hints.join('; ') || undefined };
    default: {
      if (v.minLength !== undefined && v.maxLength !== undefined) hints.push(`${v.minLength}–${v.maxLength} characters`);
      else if (v.maxLength !== undefined) hints.push(`up to ${v.maxLength} characters`);
      else if (v.minLength !== undefined) hints.push(`at least ${v.minLength} characters`);
      if (v.pattern !== undefined) hints.push(`matches ${v.pattern}`);
      const long = (typeof v.default === 'string' && v.default.includes('\n')) || (v.maxLength ?? Infinity) > TEXTAREA_FROM;
      return { ...base, kind: long ? 'textarea' : 'text', hint: hints.join('; ') || undefined };
    }
  }
}
