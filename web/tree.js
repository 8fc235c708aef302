// tree.js - a repo's stacks drawn as a tree: the trunk first, each tracked
// branch under its parent (CSS draws the parent lines), then tracked
// branches whose parent is not in the projection, then the branches that
// are in no stack. Rows are kept per branch name and updated in place; the
// tree is rebuilt only when its shape (names, tracking, parents) changes,
// and then the same row and button elements are moved, not recreated.

import {h, replaceChildren, shortSha} from './dom.js';

export class StackTree {
	// hooks: {widget(key) -> ActionWidget, taskFor(branchName) -> task|null}
	constructor(container, hooks) {
		this.container = container;
		this.hooks = hooks;
		this.rows = new Map();
		this.shape = null;
		this.trunkList = h('ul', {class: 'tree', 'aria-label': 'Stacks'});
		this.orphanHead = h('h4', {class: 'subhead'}, 'Tracked, with a parent outside the projection');
		this.orphanList = h('ul', {class: 'tree orphans'});
		this.looseHead = h('h4', {class: 'subhead'}, 'Branches in no stack');
		this.looseList = h('ul', {class: 'loose'});
		this.empty = h('p', {class: 'muted empty'}, 'No branches yet: the projection fills in with the first sync.');
		replaceChildren(container, this.empty, this.trunkList, this.orphanHead, this.orphanList, this.looseHead, this.looseList);
	}

	reset() {
		this.rows.clear();
		this.shape = null;
		replaceChildren(this.trunkList);
		replaceChildren(this.orphanList);
		replaceChildren(this.looseList);
	}

	render(model) {
		const trunk = (model.repo && model.repo.trunk) || 'main';
		const branches = model.branches;
		const shape = JSON.stringify([trunk, [...branches.values()].map((b) => [b.name, Boolean(b.tracked), b.parent || null])]);
		const focused = document.activeElement;
		if (shape !== this.shape) {
			this.shape = shape;
			this.rebuild(trunk, branches);
		}
		for (const [name, row] of this.rows) {
			const b = branches.get(name);
			if (b) this.updateRow(row, b, trunk);
			else if (name === trunk) this.updateRow(row, {name, tracked: false, state: 'active', head: null}, trunk);
		}
		if (focused && focused !== document.activeElement && focused.isConnected) focused.focus();
	}

	row(name) {
		let row = this.rows.get(name);
		if (!row) {
			const info = h('div', {class: 'info'});
			const actions = h('div', {class: 'row-actions'});
			const children = h('ul', {class: 'children'});
			const li = h('li', {class: 'node', dataset: {branch: name}}, h('div', {class: 'row'}, info, actions), children);
			row = {li, info, actions, children, sig: null, widgetKeys: null};
			this.rows.set(name, row);
		}
		return row;
	}

	rebuild(trunk, branches) {
		const byParent = new Map();
		const tracked = [];
		const loose = [];
		for (const b of branches.values()) {
			if (b.name === trunk) continue;
			if (b.tracked) {
				tracked.push(b);
				if (!byParent.has(b.parent)) byParent.set(b.parent, []);
				byParent.get(b.parent).push(b);
			} else {
				loose.push(b);
			}
		}
		for (const list of byParent.values()) list.sort((a, b) => cmp(a.name, b.name));
		loose.sort((a, b) => cmp(a.name, b.name));

		const used = new Set();
		const seen = new Set();
		const build = (name) => {
			const row = this.row(name);
			used.add(name);
			seen.add(name);
			const kids = (byParent.get(name) || []).filter((k) => !seen.has(k.name));
			const lis = kids.map((k) => build(k.name));
			setChildren(row.children, lis);
			row.children.hidden = lis.length === 0;
			return row.li;
		};
		const hasTrunk = branches.has(trunk) || tracked.length > 0;
		setChildren(this.trunkList, hasTrunk ? [build(trunk)] : []);

		// Tracked branches not reached from the trunk (their parent is
		// missing from the projection, or untracked).
		const orphans = [];
		for (const b of tracked) {
			if (seen.has(b.name)) continue;
			if (b.parent && branches.has(b.parent) && branches.get(b.parent).tracked && !seen.has(b.parent)) continue;
			orphans.push(build(b.name));
		}
		// Anything still unseen sits in a cycle; show it flat rather than lose it.
		for (const b of tracked) if (!seen.has(b.name)) orphans.push(build(b.name));
		setChildren(this.orphanList, orphans);
		this.orphanHead.hidden = this.orphanList.hidden = orphans.length === 0;

		const looseItems = loose.map((b) => {
			const row = this.row(b.name);
			used.add(b.name);
			row.children.hidden = true;
			replaceChildren(row.children);
			return row.li;
		});
		setChildren(this.looseList, looseItems);
		this.looseHead.hidden = this.looseList.hidden = looseItems.length === 0;
		this.empty.hidden = branches.size > 0;

		for (const name of [...this.rows.keys()]) if (!used.has(name)) this.rows.delete(name);
	}

	updateRow(row, b, trunk) {
		const isTrunk = b.name === trunk;
		const task = this.hooks.taskFor(b.name);
		const sig = JSON.stringify([b, isTrunk, task && [task.id, task.state, task.title, task.head]]);
		if (sig !== row.sig) {
			row.sig = sig;
			row.li.classList.toggle('trunk', isTrunk);
			row.li.classList.toggle('tracked', Boolean(b.tracked));
			row.li.dataset.state = b.state || 'active';
			const badges = [];
			if (isTrunk) badges.push(h('span', {class: 'badge b-trunk', dataset: {badge: 'trunk'}}, 'trunk'));
			if (b.needs_restack) badges.push(h('span', {class: 'badge b-warn', dataset: {badge: 'needs-restack'}}, 'needs restack'));
			if (b.state === 'merged') badges.push(h('span', {class: 'badge b-merged', dataset: {badge: 'merged'}}, 'merged'));
			if (b.state === 'missing') badges.push(h('span', {class: 'badge b-missing', dataset: {badge: 'missing'}}, 'missing'));
			const meta = [h('span', {class: 'sha', title: b.head || ''}, shortSha(b.head))];
			if (b.remote_head && b.head && b.remote_head !== b.head)
				meta.push(h('span', {class: 'muted', title: b.remote_head}, ` remote ${shortSha(b.remote_head)}`));
			if (b.tracked && b.parent) meta.push(h('span', {class: 'muted parent-of'}, ` on ${b.parent}`));
			replaceChildren(
				row.info,
				h('span', {class: 'name'}, b.name),
				badges.length ? h('span', {class: 'badges'}, badges) : null,
				h('span', {class: 'meta'}, meta),
				task ? taskChip(task) : null,
			);
		}
		// Buttons: per-branch actions for tracked branches, tracking and
		// tasks for the rest; the trunk's own actions are the repo's.
		let keys;
		if (isTrunk) keys = [];
		else if (b.tracked) keys = [`restack_subtree:${b.name}`, `rebase_branch:${b.name}`, `reparent_branch:${b.name}`, `task:${b.name}`];
		else keys = [`register_existing_branch:${b.name}`, `task:${b.name}`];
		const kstr = keys.join('\n');
		if (kstr !== row.widgetKeys) {
			row.widgetKeys = kstr;
			setChildren(
				row.actions,
				keys.map((k) => this.hooks.widget(k).el),
			);
		}
		row.actions.hidden = keys.length === 0;
	}
}

function taskChip(task) {
	return h(
		'span',
		{class: 'task-chip', dataset: {taskId: String(task.id), state: task.state}},
		h('span', {class: 'task-label'}, `Task #${task.id}`),
		task.title ? h('span', {class: 'task-title'}, ` ${task.title}`) : null,
		' ',
		h('span', {class: `badge s-${task.state}`}, task.state),
	);
}

// Make el's children exactly `nodes`, moving as little as possible (a
// moved element loses focus; the caller restores it).
function setChildren(el, nodes) {
	const cur = el.children;
	let same = cur.length === nodes.length;
	for (let i = 0; same && i < nodes.length; i++) same = cur[i] === nodes[i];
	if (same) return;
	replaceChildren(el, nodes);
}

function cmp(a, b) {
	return a < b ? -1 : a > b ? 1 : 0;
}

