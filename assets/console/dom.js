// Building DOM nodes. Data only ever becomes text (textContent, text nodes, attribute values
// set from code); nothing here parses markup, so a key named <img src=x onerror=...> shows as
// those characters.

/** An element: h('td', { class: 'value', text: v }, child, ...). `on<event>` props listen. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element, with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Runs `fn`, showing a thrown error's message in `where` (an element), and returns its value. */
export async function guard(where, fn) {
  try {
    if (where) where.textContent = '';
    return await fn();
  } catch (e) {
    if (where) where.textContent = e && e.message ? e.message : String(e);
    else console.error(e);
    return undefined;
  }
}
