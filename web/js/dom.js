// Tiny DOM helpers. Text always goes in through textContent, never innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** h('p', {class: 'x'}, 'text', h('strong', {}, 'bold')) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

export function show(el, visible) {
  el.hidden = !visible;
}

/** Put a message in an element that is hidden while empty. */
export function setMessage(el, message) {
  el.replaceChildren();
  if (message instanceof Node) el.append(message);
  else if (message) el.textContent = message;
  el.hidden = !message;
}

let announceTimer;
/** Say something to screen readers through the polite live region. */
export function announce(message) {
  const region = byId('announcer');
  clearTimeout(announceTimer);
  region.textContent = '';
  // A fresh text node after a tick makes repeated identical messages be read again.
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 50);
}
