// dialog.js - one modal form dialog (reparent, register, new task).
//
// A native <dialog> opened with showModal(): the rest of the page is
// inert, Escape closes it (the `cancel` event), and Tab / Shift+Tab are
// kept inside it (wrapping at either end). Focus goes to the first field
// on open and back to the button that opened it on close. Errors from the
// server (problem+json detail and field errors) are shown inside the
// dialog, which stays open so the person can correct the input.

import {h, replaceChildren, uid} from './dom.js';
import {ApiError} from './api.js';

const FOCUSABLE =
	'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

let dlg = null;
let current = null;

function ensureDialog() {
	if (dlg) return dlg;
	dlg = document.getElementById('dialog');
	dlg.addEventListener('keydown', (e) => {
		if (e.key === 'Escape') {
			e.preventDefault();
			closeDialog();
			return;
		}
		if (e.key !== 'Tab') return;
		const items = [...dlg.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
		if (!items.length) return;
		const first = items[0];
		const last = items[items.length - 1];
		if (e.shiftKey && (document.activeElement === first || !dlg.contains(document.activeElement))) {
			e.preventDefault();
			last.focus();
		} else if (!e.shiftKey && (document.activeElement === last || !dlg.contains(document.activeElement))) {
			e.preventDefault();
			first.focus();
		}
	});
	// Escape, as the browser delivers it to a modal dialog.
	dlg.addEventListener('cancel', (e) => {
		e.preventDefault();
		closeDialog();
	});
	dlg.addEventListener('close', () => restoreFocus());
	return dlg;
}

function restoreFocus() {
	if (!current) return;
	const opener = current.opener;
	current = null;
	if (opener && opener.isConnected && !opener.disabled) opener.focus();
}

export function closeDialog() {
	if (dlg && dlg.open) dlg.close();
	else restoreFocus();
}

export function dialogOpen() {
	return Boolean(dlg && dlg.open);
}

// openDialog({title, description, fields, submitLabel, onSubmit, opener, name})
//   fields: [{name, label, type: 'text'|'select', value, options: [{value, label}],
//             required, readOnly, hint, placeholder, autocomplete}]
//   onSubmit(values) -> Promise; a rejection (ApiError or Error) is shown
//   in the dialog; a resolution closes it.
export function openDialog(spec) {
	const d = ensureDialog();
	if (d.open) d.close();
	current = {opener: spec.opener || document.activeElement};
	const titleId = uid('dlg-title');
	const errId = uid('dlg-err');
	const inputs = {};
	const fieldEls = spec.fields.map((f) => {
		const id = uid('fld');
		const hintId = f.hint ? uid('hint') : null;
		let input;
		if (f.type === 'select') {
			input = h(
				'select',
				{id, name: f.name, required: f.required, 'aria-describedby': hintId},
				f.options.map((o) => h('option', {value: o.value, selected: o.value === f.value ? true : null}, o.label)),
			);
			if (f.value !== undefined) input.value = f.value;
		} else {
			input = h('input', {
				id,
				name: f.name,
				type: 'text',
				value: f.value || '',
				required: f.required,
				readOnly: f.readOnly,
				placeholder: f.placeholder || null,
				autocomplete: f.autocomplete || 'off',
				spellcheck: 'false',
				autocapitalize: 'off',
				'aria-describedby': hintId,
			});
		}
		inputs[f.name] = input;
		return h(
			'div',
			{class: 'field'},
			h('label', {for: id}, f.label),
			input,
			f.hint ? h('p', {class: 'hint', id: hintId}, f.hint) : null,
		);
	});
	const errorBox = h('div', {class: 'form-error', id: errId, role: 'alert'});
	const submit = h('button', {type: 'submit', class: 'primary'}, spec.submitLabel || 'OK');
	const cancel = h('button', {type: 'button', onclick: () => closeDialog()}, 'Cancel');
	const form = h(
		'form',
		{method: 'dialog', novalidate: true, 'data-dialog': spec.name || null},
		h('h2', {id: titleId}, spec.title),
		spec.description ? h('p', {class: 'dlg-desc'}, spec.description) : null,
		fieldEls,
		errorBox,
		h('div', {class: 'dlg-buttons'}, submit, cancel),
	);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		replaceChildren(errorBox);
		const values = {};
		for (const [k, el] of Object.entries(inputs)) values[k] = el.value.trim();
		const missing = spec.fields.filter((f) => f.required && !values[f.name]);
		if (missing.length) {
			replaceChildren(errorBox, `${missing[0].label} is required.`);
			inputs[missing[0].name].focus();
			return;
		}
		submit.disabled = true;
		submit.setAttribute('aria-busy', 'true');
		try {
			await spec.onSubmit(values);
			closeDialog();
		} catch (err) {
			const lines = err instanceof ApiError ? err.fieldErrors : [];
			replaceChildren(
				errorBox,
				h('p', null, err && err.message ? err.message : String(err)),
				lines.length ? h('ul', null, lines.map((l) => h('li', null, l))) : null,
			);
			submit.disabled = false;
			submit.removeAttribute('aria-busy');
			const first = spec.fields.find((f) => !f.readOnly);
			if (first) inputs[first.name].focus();
		}
	});
	replaceChildren(d, form);
	d.setAttribute('aria-labelledby', titleId);
	d.showModal();
	const first = spec.fields.find((f) => !f.readOnly);
	(first ? inputs[first.name] : submit).focus();
	return d;
}
