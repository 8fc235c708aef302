// dom.js - building DOM nodes without ever parsing HTML.
//
// Every string that comes from the API (branch names, messages, paths,
// problem details) reaches the page through textContent or an attribute
// set with setAttribute, never through innerHTML: a branch called
// "<img onerror=...>" is shown as those characters.

// h('button', {class: 'act', type: 'button', onclick: fn, dataset: {k: 'v'}}, 'text', child...)
// Attributes: `class`, `dataset` (an object), `on<event>` (a function),
// `hidden`/`disabled` (booleans), anything else with setAttribute (null
// and false leave it out). Children: strings become text nodes; null,
// undefined and false are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v === null || v === undefined || v === false) continue;
			if (k === 'class') el.className = v;
			else if (k === 'dataset') Object.assign(el.dataset, v);
			else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
			else if (k === 'hidden' || k === 'disabled' || k === 'required' || k === 'readOnly') el[k] = Boolean(v);
			else if (k === 'value') el.value = v;
			else el.setAttribute(k, v === true ? '' : String(v));
		}
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false) continue;
		if (Array.isArray(c)) append(el, c);
		else if (c instanceof Node) el.appendChild(c);
		else el.appendChild(document.createTextNode(String(c)));
	}
}

// Replace every child of el with children (same rules as h()).
export function replaceChildren(el, ...children) {
	el.textContent = '';
	append(el, children);
	return el;
}

// Set el's text only when it changed (no needless mutations).
export function setText(el, text) {
	const t = text === null || text === undefined ? '' : String(text);
	if (el.textContent !== t) el.textContent = t;
}

// Set or remove an attribute only when it changed.
export function setAttr(el, name, value) {
	if (value === null || value === undefined || value === false) {
		if (el.hasAttribute(name)) el.removeAttribute(name);
	} else {
		const v = value === true ? '' : String(value);
		if (el.getAttribute(name) !== v) el.setAttribute(name, v);
	}
}

let idCounter = 0;
// A fresh id for aria-describedby and label/for pairs (branch names can
// hold characters that do not belong in an id).
export function uid(prefix = 'id') {
	idCounter += 1;
	return `${prefix}-${idCounter}`;
}

// A short commit id, or an em dash.
export function shortSha(sha) {
	return typeof sha === 'string' && sha.length >= 7 ? sha.slice(0, 7) : '—';
}

// An RFC 3339 time as a <time> element with the local time as its text.
export function timeEl(iso) {
	if (!iso) return h('span', {class: 'muted'}, '—');
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return h('span', null, iso);
	const now = new Date();
	const sameDay = d.toDateString() === now.toDateString();
	const text = sameDay ? d.toLocaleTimeString() : d.toLocaleString();
	return h('time', {datetime: iso, title: iso}, text);
}
