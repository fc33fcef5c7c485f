// The params form, drawn from the field model the API sends (src/studio/form-model.ts).
// Nothing here validates: values go to the API as typed, and its 400 details are shown beside
// the fields they name.

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter(Boolean));
  return node;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const HEX6 = /^#[0-9a-f]{6}$/i;

/**
 * Draws `fields` into `form`; `start` holds values to keep (by name) across a reload.
 * Returns collect() → params, showErrors(details) → details no field took, clearErrors().
 */
export function renderForm(form, fields, start, onChange) {
  form.replaceChildren();
  const errorSlots = new Map(); // param path → {slot, input}
  const readers = [];

  for (const field of fields) {
    const initial = start && Object.hasOwn(start, field.name) ? start[field.name] : field.default;
    if (field.kind === 'list') {
      const list = listField(field, initial, errorSlots, onChange);
      form.append(list.node);
      readers.push(() => {
        const value = list.read();
        return same(value, field.default ?? []) && field.default !== undefined ? undefined : [field.name, value];
      });
    } else {
      const scalar = scalarField(field, field.name, initial, errorSlots, onChange);
      form.append(scalar.node);
      readers.push(() => {
        const value = scalar.read();
        return value === undefined || (field.default !== undefined && same(value, field.default)) ? undefined : [field.name, value];
      });
    }
  }
  form.addEventListener('input', onChange);
  form.addEventListener('change', onChange);

  return {
    collect() {
      return Object.fromEntries(readers.map((r) => r()).filter(Boolean));
    },
    clearErrors() {
      for (const { slot, input } of errorSlots.values()) {
        slot.textContent = '';
        input?.removeAttribute('aria-invalid');
      }
    },
    showErrors(details) {
      this.clearErrors();
      const unplaced = [];
      for (const d of details) {
        // `slides[1].image` → its input; else the closest enclosing field (`slides`).
        let path = d.field;
        let target = errorSlots.get(path);
        while (!target && /[.[]/.test(path)) {
          path = path.replace(/(\.[^.[]*|\[\d+\])$/, '');
          target = errorSlots.get(path);
        }
        if (!target) {
          unplaced.push(d);
          continue;
        }
        target.slot.textContent = target.slot.textContent ? `${target.slot.textContent}; ${d.message}` : d.message;
        target.input?.setAttribute('aria-invalid', 'true');
      }
      return unplaced;
    },
  };
}

function describedBy(...ids) {
  return ids.filter(Boolean).join(' ');
}

function scalarField(field, path, initial, errorSlots, onChange) {
  const id = nextId('f');
  const hintId = field.hint || field.description ? `${id}-hint` : undefined;
  const errId = `${id}-err`;
  const label = el('label', { for: id, text: field.label + (field.required ? ' *' : '') });
  const hint = hintId ? el('p', { class: 'hint', id: hintId, text: [field.description, field.hint].filter(Boolean).join(' — ') }) : undefined;
  const error = el('p', { class: 'error', id: errId, 'data-error-for': path });
  const common = { id, name: path, 'aria-describedby': describedBy(hintId, errId), 'data-path': path };
  let input;
  let read;
  let extra;
  switch (field.kind) {
    case 'checkbox':
      input = el('input', { ...common, type: 'checkbox' });
      input.checked = initial === true;
      read = () => input.checked;
      break;
    case 'select':
      input = el('select', common);
      for (const option of field.options ?? []) input.append(el('option', { value: String(option), text: String(option) }));
      input.value = initial === undefined ? '' : String(initial);
      read = () => {
        const match = (field.options ?? []).find((o) => String(o) === input.value);
        return match ?? input.value;
      };
      break;
    case 'textarea':
      input = el('textarea', { ...common, rows: 6, spellcheck: 'false' });
      input.value = initial === undefined ? '' : String(initial);
      read = () => (input.value === '' && field.default === undefined ? undefined : input.value);
      break;
    case 'number':
      // type=text with inputmode: a number input hides what was typed when it is not a number, and the API should judge it.
      input = el('input', { ...common, type: 'text', inputmode: 'decimal', spellcheck: 'false' });
      input.value = initial === undefined ? '' : String(initial);
      read = () => {
        const raw = input.value.trim();
        if (raw === '') return undefined;
        const n = Number(raw);
        return Number.isFinite(n) ? n : raw;
      };
      break;
    case 'color': {
      input = el('input', { ...common, type: 'text', spellcheck: 'false', autocomplete: 'off' });
      input.value = initial === undefined ? '' : String(initial);
      const picker = el('input', { type: 'color', 'aria-label': `${field.label}: colour picker`, tabindex: 0 });
      const sync = () => {
        if (HEX6.test(input.value)) picker.value = input.value.toLowerCase();
      };
      sync();
      input.addEventListener('input', sync);
      picker.addEventListener('input', () => {
        input.value = picker.value;
        onChange();
      });
      extra = el('div', { class: 'color' }, input, picker);
      read = () => (input.value === '' ? undefined : input.value);
      break;
    }
    case 'url':
      input = el('input', { ...common, type: 'url', spellcheck: 'false', autocomplete: 'off', placeholder: 'https://…' });
      input.value = initial === undefined ? '' : String(initial);
      // Empty: the template's default applies.
      read = () => (input.value.trim() === '' ? undefined : input.value.trim());
      break;
    default:
      input = el('input', { ...common, type: 'text' });
      input.value = initial === undefined ? '' : String(initial);
      read = () => (input.value === '' && (field.default === undefined || field.required) ? undefined : input.value);
  }
  errorSlots.set(path, { slot: error, input });
  const node = el('div', { class: 'field' }, label, hint, extra ?? input, error);
  return { node, read };
}

function listField(field, initial, errorSlots, onChange) {
  const legendId = nextId('l');
  const errId = `${legendId}-err`;
  const items = [];
  const fieldset = el('fieldset', { class: 'field', 'data-path': field.name, 'aria-describedby': errId });
  const legend = el('legend', { id: legendId, text: field.label + (field.required ? ' *' : '') });
  const hint = field.hint || field.description ? el('p', { class: 'hint', text: [field.description, field.hint].filter(Boolean).join(' — ') }) : undefined;
  const error = el('p', { class: 'error', id: errId, 'data-error-for': field.name });
  const container = el('div');
  const add = el('button', { type: 'button', text: `Add ${field.label} item` });
  fieldset.append(legend, ...(hint ? [hint] : []), error, container, add);
  errorSlots.set(field.name, { slot: error, input: fieldset });

  const renumber = () => {
    items.forEach((item, i) => item.setIndex(i));
  };
  const addItem = (value) => {
    const item = listItem(field, value, errorSlots, onChange, (self) => {
      items.splice(items.indexOf(self), 1);
      self.node.remove();
      renumber();
      onChange();
      add.focus();
    });
    items.push(item);
    container.append(item.node);
    renumber();
    return item;
  };
  for (const value of Array.isArray(initial) ? initial : []) addItem(value);
  add.addEventListener('click', () => {
    const item = addItem(undefined);
    item.focus();
    onChange();
  });
  return { node: fieldset, read: () => items.map((i) => i.read()) };
}

function listItem(field, value, errorSlots, onChange, remove) {
  const node = el('div', { class: 'list-item', role: 'group' });
  let parts = [];
  let index = -1;
  const removeButton = el('button', { type: 'button' });
  removeButton.addEventListener('click', () => remove(self));
  const build = () => {
    for (const p of parts) for (const path of p.paths) errorSlots.delete(path);
    const body = [];
    parts = (field.item ?? []).map((f) => {
      const path = field.scalarItems ? `${field.name}[${index}]` : `${field.name}[${index}].${f.name}`;
      const current = field.scalarItems ? value : value && typeof value === 'object' ? value[f.name] : undefined;
      const made = scalarField({ ...f, label: field.scalarItems ? `${field.label} ${index + 1}` : `${f.label} (${index + 1})` }, path, current ?? f.default, errorSlots, onChange);
      body.push(made.node);
      return { name: f.name, made, paths: [path] };
    });
    node.replaceChildren(...body, removeButton);
  };
  const self = {
    node,
    setIndex(i) {
      if (i === index) return;
      value = parts.length ? self.read() : value; // keep what was typed when items move up
      index = i;
      node.setAttribute('aria-label', `${field.label} item ${i + 1}`);
      removeButton.textContent = `Remove item ${i + 1}`;
      build();
    },
    read() {
      if (field.scalarItems) return parts[0]?.made.read();
      const out = {};
      for (const p of parts) {
        const v = p.made.read();
        if (v !== undefined) out[p.name] = v;
      }
      return out;
    },
    focus() {
      node.querySelector('input, textarea, select')?.focus();
    },
  };
  return self;
}
