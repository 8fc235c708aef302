// app.js - the repoflow dashboard: the token prompt, the repos, and for
// one repo its stacks, actions, jobs and tasks, kept live from the API.
//
// State comes from the API, never from memory alone. Opening a repo (and
// every reconnect) reads the current state — GET the repo overview,
// branches, jobs and tasks — and then follows the repo's events from
// where the feed stands (feed.js), applying each event's `data` (the full
// object) to the model. A reload therefore shows exactly what the server
// has, including jobs that are still running.

import {h, replaceChildren, setText, timeEl, shortSha} from './dom.js';
import {ApiError, get, getToken, onUnauthorized, post, request, seg, setToken} from './api.js';
import {Feed, tailSeq} from './feed.js';
import {ActionWidget, jobActive, taskReason} from './actions.js';
import {StackTree} from './tree.js';
import {closeDialog, dialogOpen, openDialog} from './dialog.js';

const $ = (id) => document.getElementById(id);

const KIND_LABEL = {
	sync_repo: 'sync',
	restack_repo: 'restack all',
	restack_subtree: 'restack',
	rebase_branch: 'rebase',
	reparent_branch: 'reparent',
	register_existing_branch: 'register',
};
const JOBS_SHOWN = 25;

// --- the model -------------------------------------------------------------

const M = {
	repos: [],
	name: null, // the repo shown
	repo: null, // its overview, as GET /v1/repos/{repo} returns it
	branches: new Map(), // name -> branch row, in the API's order
	jobs: new Map(), // id -> job
	tasks: new Map(), // id -> task, as GET …/tasks/{id} returns it
	latest: new Map(), // widget key -> newest job id of that key
	gen: 0, // bumped on every repo switch: late answers of an old one are dropped
	detailJob: null, // the job whose detail and log are shown
};
let feed = null;
const widgets = new Map(); // key -> ActionWidget
let tree = null;

function resetModel() {
	M.repo = null;
	M.branches = new Map();
	M.jobs = new Map();
	M.tasks = new Map();
	M.latest = new Map();
	widgets.clear();
	if (tree) tree.reset();
}

// The keys of the widgets that show a job: its own action, and for
// register_existing_branch also the repo's "Register branch" button.
function jobKeys(job) {
	const keys = [`${job.kind}:${job.branch || ''}`];
	if (job.kind === 'register_existing_branch') keys.push('register_existing_branch:*');
	return keys;
}

const FINAL = new Set(['completed', 'error', 'canceled']);

// Whether `next` may replace `cur` (the same job): the API's answers and
// the events can arrive out of order (a POST's answer after the stream
// already brought the job's next states), so an older copy never
// overwrites a newer one. A final status is final; otherwise the later
// updated_at wins (RFC 3339 with milliseconds, comparable as text).
function jobNewer(cur, next) {
	if (!cur) return true;
	if (FINAL.has(cur.status) && !FINAL.has(next.status)) return false;
	if (typeof cur.updated_at === 'string' && typeof next.updated_at === 'string') return next.updated_at >= cur.updated_at;
	return true;
}

function setJob(job) {
	if (!job || typeof job.id !== 'number') return;
	if (!jobNewer(M.jobs.get(job.id), job)) return;
	M.jobs.set(job.id, job);
	for (const key of jobKeys(job)) {
		const cur = M.latest.get(key);
		if (cur === undefined || job.id >= cur) {
			M.latest.set(key, job.id);
			const w = widgets.get(key);
			if (w && !w.task) w.showJob(job);
		}
	}
	// Task widgets that show this job as their attach job.
	for (const t of M.tasks.values()) if (taskJobId(t) === job.id) refreshTaskWidgets(t.branch);
	schedule('jobs', 'overview', 'tasks');
	if (M.detailJob === job.id) schedule('detail');
}

// The register_existing_branch job that attaches a task (null for a task
// that was ready at once).
function taskJobId(task) {
	return task && typeof task.job_id === 'number' ? task.job_id : null;
}

const LIVE_TASK = new Set(['pending_branch_attach', 'ready']);

// A task as GET …/tasks/{id}, the list and task.updated events carry it.
// The answer to POST …/tasks has one more member, `job` (the whole attach
// job, or null): the job goes to the jobs, the task is kept without it.
// The task's `version` grows on every change: an older copy is ignored.
function setTask(task) {
	if (!task || typeof task.id !== 'number') return;
	const {job, ...t} = task;
	if (job && typeof job === 'object') setJob(job);
	const cur = M.tasks.get(t.id);
	if (cur && typeof cur.version === 'number' && typeof t.version === 'number' && t.version < cur.version) return;
	M.tasks.set(t.id, t);
	refreshTaskWidgets(t.branch);
	schedule('tasks', 'tree');
}

// The newest task of a branch ('*': of any branch).
function latestTask(branch) {
	let best = null;
	for (const t of M.tasks.values()) if ((branch === '*' || t.branch === branch) && (!best || t.id > best.id)) best = t;
	return best;
}

// The task shown on a branch's row: its live task (pending_branch_attach
// or ready; a branch has at most one). The tasks (and their task.updated
// events) say which it is; the row's own task_id is a hint that a
// task.updated does not refresh, used only to fetch a task not loaded.
function taskFor(name) {
	let best = null;
	for (const t of M.tasks.values()) if (t.branch === name && LIVE_TASK.has(t.state) && (!best || t.id > best.id)) best = t;
	return best;
}

// A branch row names a task this page has not loaded (older than the
// list it read): fetch it.
const taskFetches = new Set();
function wantTask(id) {
	if (typeof id !== 'number' || M.tasks.has(id) || taskFetches.has(id) || !M.name) return;
	const gen = M.gen;
	taskFetches.add(id);
	get(`/v1/repos/${seg(M.name)}/tasks/${id}`).then(
		(r) => {
			taskFetches.delete(id);
			if (gen === M.gen) setTask(r.data);
		},
		() => taskFetches.delete(id),
	);
}

function refreshTaskWidgets(branch) {
	for (const key of [`task:${branch}`, 'task:*']) {
		const w = widgets.get(key);
		if (!w) continue;
		const t = latestTask(key.slice(5));
		if (t) w.showTask(t, M.jobs.get(taskJobId(t)) || null);
	}
}

function setBranch(b) {
	if (!b || !b.name) return;
	M.branches.set(b.name, b);
	wantTask(b.task_id);
	schedule('tree');
}

function removeBranch(name) {
	if (M.branches.delete(name)) schedule('tree');
}

function applyEvent(ev) {
	switch (ev.type) {
		case 'job.updated':
			setJob(ev.data);
			break;
		case 'task.updated':
			setTask(ev.data);
			break;
		case 'branch.updated':
			setBranch(ev.data);
			break;
		case 'branch.removed':
			removeBranch((ev.data && ev.data.name) || ev.id);
			break;
		case 'repo.updated':
			if (ev.data && ev.data.name === M.name) {
				M.repo = ev.data;
				updateRepoInList(ev.data);
				schedule('overview', 'tree');
			}
			break;
		default:
			break;
	}
}

// --- rendering, batched ---------------------------------------------------------

const dirty = new Set();
let flushTimer = null;
function schedule(...parts) {
	for (const p of parts) dirty.add(p);
	if (!flushTimer) flushTimer = setTimeout(flush, 0);
}
function flush() {
	flushTimer = null;
	const parts = new Set(dirty);
	dirty.clear();
	if (!M.name) return;
	if (parts.has('overview')) renderOverview();
	if (parts.has('tree')) tree.render(M);
	if (parts.has('jobs')) renderJobs();
	if (parts.has('tasks')) renderTasks();
	if (parts.has('detail')) renderDetail();
	if (parts.has('repos')) renderRepos();
}

// --- the widgets --------------------------------------------------------------------

function widget(key) {
	let w = widgets.get(key);
	if (w) return w;
	const [kind, ...rest] = key.split(':');
	const branch = rest.join(':');
	let label;
	let aria;
	let onActivate;
	switch (kind) {
		case 'sync_repo':
			label = 'Sync';
			aria = 'Sync the repo with its remote';
			onActivate = (wd) => runAction(wd, {kind: 'sync_repo'});
			break;
		case 'restack_repo':
			label = 'Restack all';
			aria = 'Restack all stacks of the repo';
			onActivate = (wd) => runAction(wd, {kind: 'restack_repo'});
			break;
		case 'restack_subtree':
			label = 'Restack';
			aria = `Restack ${branch} and the branches above it`;
			onActivate = (wd) => runAction(wd, {kind: 'restack_subtree', branch});
			break;
		case 'rebase_branch':
			label = 'Rebase';
			aria = `Rebase ${branch} onto its parent`;
			onActivate = (wd) => runAction(wd, {kind: 'rebase_branch', branch});
			break;
		case 'reparent_branch':
			label = 'Reparent…';
			aria = `Reparent ${branch}: choose a new parent`;
			onActivate = (wd) => reparentDialog(wd, branch);
			break;
		case 'register_existing_branch':
			if (branch === '*') {
				label = 'Register branch…';
				aria = 'Register branch…: track a branch by name';
			} else {
				label = 'Track…';
				aria = `Track ${branch}: register it in a stack`;
			}
			onActivate = (wd) => registerDialog(wd, branch === '*' ? '' : branch);
			break;
		case 'task':
			if (branch === '*') {
				label = 'New task…';
				aria = 'New task…: create a task on a branch by name';
			} else {
				label = 'Task…';
				aria = `Create a task on ${branch}`;
			}
			onActivate = (wd) => taskDialog(wd, branch === '*' ? '' : branch);
			break;
		default:
			throw new Error(`unknown widget ${key}`);
	}
	w = new ActionWidget({key, label, ariaLabel: aria, onActivate, onCancel: cancelJob});
	widgets.set(key, w);
	if (kind === 'task') {
		const t = latestTask(branch);
		if (t) w.showTask(t, M.jobs.get(taskJobId(t)) || null);
	} else {
		const id = M.latest.get(key);
		if (id !== undefined) w.showJob(M.jobs.get(id));
	}
	return w;
}

async function runAction(w, body) {
	const gen = M.gen;
	const repo = M.name;
	w.sending();
	try {
		const r = await post(`/v1/repos/${seg(repo)}/actions`, body);
		if (gen !== M.gen) return;
		setJob(r.data);
		feed && feed.nudge();
	} catch (e) {
		if (gen !== M.gen) return;
		if (e instanceof ApiError) w.rejected(e);
		else throw e;
	}
}

async function cancelJob(job, w) {
	try {
		const r = await post(`/v1/repos/${seg(M.name)}/jobs/${job.id}/cancel`, undefined);
		if (r.data) setJob(r.data);
	} catch (e) {
		if (!(e instanceof ApiError)) throw e;
		if (e.status === 409) {
			// It finished meanwhile: show what it became.
			try {
				const r = await get(`/v1/repos/${seg(M.name)}/jobs/${job.id}`);
				setJob(r.data);
			} catch {
				/* the feed will bring it */
			}
		} else if (w) {
			w.rejected(e);
		}
	}
	feed && feed.nudge();
}

// The possible parents of `branch`: the trunk and every tracked branch
// that is not the branch itself or above it (that would make a cycle).
function parentChoices(branch) {
	const trunk = (M.repo && M.repo.trunk) || 'main';
	const above = new Set(branch ? [branch] : []);
	let grew = true;
	while (grew) {
		grew = false;
		for (const b of M.branches.values()) {
			if (b.tracked && b.parent && above.has(b.parent) && !above.has(b.name)) {
				above.add(b.name);
				grew = true;
			}
		}
	}
	const names = [...M.branches.values()].filter((b) => b.tracked && b.name !== trunk && !above.has(b.name)).map((b) => b.name);
	names.sort();
	return [trunk, ...names];
}

function reparentDialog(w, branch) {
	const b = M.branches.get(branch);
	const choices = parentChoices(branch);
	const current = b && b.parent;
	const value = choices.find((c) => c !== current) || choices[0];
	openDialog({
		name: 'reparent',
		opener: w.button,
		title: `Reparent ${branch}`,
		description: current ? `It sits on ${current} now. Its commits are moved onto the new parent, and the branches above it follow.` : null,
		submitLabel: 'Reparent',
		fields: [
			{
				name: 'parent',
				label: 'New parent',
				type: 'select',
				value,
				options: choices.map((c) => ({value: c, label: c === current ? `${c} (current)` : c})),
				required: true,
			},
		],
		onSubmit: async (v) => {
			w.sending();
			try {
				const r = await post(`/v1/repos/${seg(M.name)}/actions`, {kind: 'reparent_branch', branch, parent: v.parent});
				setJob(r.data);
				feed && feed.nudge();
			} catch (e) {
				w.showJob(M.jobs.get(M.latest.get(w.key)) || null);
				throw e;
			}
		},
	});
}

function registerDialog(w, branch) {
	const choices = parentChoices(branch);
	openDialog({
		name: 'register',
		opener: w.button,
		title: branch ? `Track ${branch}` : 'Register a branch',
		description: 'The worker looks the branch up on the remote and tracks it on the parent you choose (or the one it infers).',
		submitLabel: 'Register',
		fields: [
			{name: 'branch', label: 'Branch name', value: branch, required: true, readOnly: Boolean(branch), placeholder: 'feat-x'},
			{
				name: 'parent',
				label: 'Parent',
				type: 'select',
				value: '',
				options: [{value: '', label: 'infer it'}, ...choices.filter((c) => c !== branch).map((c) => ({value: c, label: c}))],
			},
		],
		onSubmit: async (v) => {
			const body = {kind: 'register_existing_branch', branch: v.branch};
			if (v.parent) body.parent = v.parent;
			const target = widget(`register_existing_branch:${v.branch}`);
			w.sending();
			try {
				const r = await post(`/v1/repos/${seg(M.name)}/actions`, body);
				setJob(r.data);
				if (target !== w) target.showJob(r.data);
				feed && feed.nudge();
			} catch (e) {
				w.showJob(M.jobs.get(M.latest.get(w.key)) || null);
				throw e;
			}
		},
	});
}

function taskDialog(w, branch) {
	openDialog({
		name: 'task',
		opener: w.button,
		title: branch ? `New task on ${branch}` : 'New task',
		description:
			'A task owns a branch. If the branch is not tracked yet (or the projection is stale), the task waits in pending_branch_attach while a job attaches it.',
		submitLabel: 'Create task',
		fields: [
			{name: 'branch', label: 'Branch name', value: branch, required: true, readOnly: Boolean(branch), placeholder: 'feat-x'},
			{name: 'title', label: 'Title', value: '', required: true, placeholder: 'What the work is'},
		],
		onSubmit: async (v) => {
			w.sending();
			let r;
			try {
				r = await post(`/v1/repos/${seg(M.name)}/tasks`, {branch: v.branch, title: v.title});
			} catch (e) {
				const t = latestTask(w.key.slice(5));
				if (t) w.showTask(t, M.jobs.get(taskJobId(t)) || null);
				else w.showJob(null);
				if (e instanceof ApiError) w.rejected(e);
				throw e;
			}
			// 201: the task, ready, with "job": null; 202: the task,
			// pending_branch_attach, with "job": the attach job.
			setTask(r.data);
			feed && feed.nudge();
		},
	});
}

// --- the views ------------------------------------------------------------------------

function show(id, visible) {
	$(id).hidden = !visible;
}

function setConn(kind, text) {
	const el = $('conn');
	el.dataset.kind = kind;
	setText(el, text);
}

function renderRepos() {
	const list = $('repo-list');
	const items = M.repos.map((r) => {
		const cur = r.name === M.name;
		return h(
			'li',
			{dataset: {repo: r.name}},
			h(
				'a',
				{href: `#/repos/${seg(r.name)}`, 'aria-current': cur ? 'page' : null},
				h('span', {class: 'repo-name'}, r.name),
				' ',
				syncBadge(r.sync && r.sync.status),
				r.needs_restack ? h('span', {class: 'badge b-warn'}, r.needs_restack === 1 ? '1 needs restack' : `${r.needs_restack} need restack`) : null,
			),
		);
	});
	const focused = document.activeElement && document.activeElement.closest('#repo-list li');
	const focusedName = focused ? focused.dataset.repo : null;
	replaceChildren(list, items.length ? items : h('li', {class: 'muted'}, 'No repos visible to this token.'));
	if (focusedName) {
		const a = [...list.querySelectorAll('li')].find((li) => li.dataset.repo === focusedName);
		if (a) a.querySelector('a').focus();
	}
}

function updateRepoInList(repo) {
	const i = M.repos.findIndex((r) => r.name === repo.name);
	if (i >= 0) M.repos[i] = repo;
	schedule('repos');
}

function syncBadge(status) {
	const s = status || 'never';
	return h('span', {class: `badge sync-${s}`, dataset: {sync: s}}, s === 'ok' ? 'synced' : s === 'never' ? 'never synced' : `sync ${s}`);
}

function renderOverview() {
	const r = M.repo;
	if (!r) return;
	setText($('repo-title'), r.name);
	const active = [...M.jobs.values()].filter(jobActive).length;
	const sync = r.sync || {};
	replaceChildren(
		$('overview'),
		dl([
			['Trunk', h('code', null, r.trunk)],
			['Remote', h('code', {class: 'url'}, r.remote_url)],
			['Sync', [syncBadge(sync.status), ' ', sync.last_synced_at ? ['last ', timeEl(sync.last_synced_at)] : null]],
			sync.last_error ? ['Last error', h('span', {class: 'error'}, sync.last_error)] : null,
			['Branches', String(r.branches)],
			['Need restack', h('span', {dataset: {count: 'needs-restack'}}, String(r.needs_restack))],
			['Active jobs', h('span', {dataset: {count: 'active-jobs'}}, String(active))],
		]),
	);
}

function dl(rows) {
	return h(
		'dl',
		{class: 'facts'},
		rows.filter(Boolean).map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v))),
	);
}

function renderJobs() {
	const tbody = $('jobs-body');
	const jobs = [...M.jobs.values()].sort((a, b) => b.id - a.id).slice(0, JOBS_SHOWN);
	const focusKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focusKey : null;
	const rows = jobs.map((j) => {
		const p = j.progress || {};
		let progress = '';
		if (j.status === 'running' && p.total > 0) progress = `${p.step}/${p.total} `;
		if (j.status === 'running' && p.detail) progress += p.detail;
		const conflicts = (j.result && Array.isArray(j.result.conflicts) && j.result.conflicts) || [];
		return h(
			'tr',
			{dataset: {jobId: String(j.id), state: j.status}},
			td('Job', `#${j.id}`),
			td('Kind', KIND_LABEL[j.kind] || j.kind),
			td('Branch', j.branch ? h('code', null, j.branch) : h('span', {class: 'muted'}, '—'), j.parent ? [' → ', h('code', null, j.parent)] : null),
			td('Status', h('span', {class: `badge s-${j.status}`}, j.status), progress ? h('span', {class: 'st-detail'}, ` ${progress}`) : null),
			tdc(
				'Message',
				'msg',
				j.message || '',
				conflicts.length ? h('span', {class: 'paths'}, ' (', conflicts.flatMap((c) => c.paths || []).join(', '), ')') : null,
			),
			td('Updated', timeEl(j.updated_at)),
			tdc(
				'Links',
				'links',
				h(
					'a',
					{
						href: `#/repos/${seg(M.name)}/jobs/${j.id}/log`,
						dataset: {focusKey: `log-${j.id}`, api: (j.links && j.links.log) || ''},
						'aria-label': `Log of job ${j.id}`,
					},
					'log',
				),
				jobActive(j)
					? [
							' ',
							h(
								'button',
								{
									type: 'button',
									class: 'cancel small',
									disabled: Boolean(j.cancel_requested),
									dataset: {focusKey: `cancel-${j.id}`},
									'aria-label': `Cancel job ${j.id}`,
									onclick: () => cancelJob(j, null),
								},
								j.cancel_requested ? 'Cancel requested' : 'Cancel',
							),
						]
					: null,
			),
		);
	});
	replaceChildren(tbody, rows.length ? rows : h('tr', null, h('td', {colspan: '7', class: 'muted'}, 'No jobs yet.')));
	if (focusKey) {
		const el = tbody.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
		if (el && !el.disabled) el.focus();
	}
}

// A table cell whose content is one element (so that the narrow layout,
// which makes the cell a flex row of label and content, keeps it whole).
function td(label, ...children) {
	return tdc(label, null, ...children);
}
function tdc(label, cls, ...children) {
	return h('td', {'data-label': label, class: cls}, h('span', {class: 'cell'}, ...children));
}

function renderTasks() {
	const box = $('tasks-body');
	const tasks = [...M.tasks.values()].sort((a, b) => b.id - a.id);
	replaceChildren(
		box,
		tasks.length
			? tasks.map((t) => {
					const job = M.jobs.get(taskJobId(t));
					return h(
						'li',
						{dataset: {taskId: String(t.id), branch: t.branch || '', state: t.state}},
						h('span', {class: 'task-label'}, `#${t.id}`),
						' ',
						h('code', null, t.branch || '?'),
						' ',
						h('span', {class: 'task-title'}, t.title || ''),
						' ',
						h('span', {class: `badge s-${t.state}`}, t.state),
						t.state === 'ready' && t.head ? h('span', {class: 'muted'}, ` at ${shortSha(t.head)}`) : null,
						t.state === 'pending_branch_attach' && taskJobId(t) !== null
							? h('span', {class: 'muted'}, ` (job #${taskJobId(t)}${job ? ` ${job.status}` : ''})`)
							: null,
						t.state === 'attach_failed' ? h('p', {class: 'error task-reason'}, taskReason(t, job)) : null,
					);
				})
			: h('li', {class: 'muted'}, 'No tasks yet.'),
	);
}

let logFetch = {id: null, status: null};
function renderDetail() {
	const sec = $('job-detail');
	const id = M.detailJob;
	if (!id) {
		sec.hidden = true;
		return;
	}
	sec.hidden = false;
	$('job-detail-close').setAttribute('href', `#/repos/${seg(M.name)}`);
	const j = M.jobs.get(id);
	setText($('job-detail-title'), `Job #${id}${j ? ` · ${KIND_LABEL[j.kind] || j.kind}${j.branch ? ` ${j.branch}` : ''}` : ''}`);
	if (!j) {
		replaceChildren($('job-summary'), h('p', {class: 'muted'}, 'Loading…'));
		return;
	}
	const res = j.result || {};
	const conflicts = Array.isArray(res.conflicts) ? res.conflicts : [];
	const names = (a, f) => (Array.isArray(a) && a.length ? a.map(f).join(', ') : null);
	const p = j.progress || {};
	replaceChildren(
		$('job-summary'),
		h(
			'p',
			{class: 'job-line', dataset: {state: j.status}},
			h('span', {class: `badge s-${j.status}`}, j.status),
			' ',
			j.status === 'running' && p.total > 0 ? `${p.step}/${p.total} ${p.detail || ''} · ` : '',
			j.message || '',
		),
		j.error
			? h(
					'div',
					{class: 'job-error'},
					h('p', {class: 'err-title'}, j.error.title || 'Error'),
					j.error.detail ? h('p', {class: 'err-detail'}, j.error.detail) : null,
					conflicts.length
						? h(
								'ul',
								{class: 'conflicts', 'aria-label': 'Conflicts'},
								conflicts.map((c) => h('li', null, h('strong', null, c.branch || '?'), ': ', (c.paths || []).map((x, i) => [i ? ', ' : '', h('code', {class: 'path'}, x)]))),
							)
						: null,
				)
			: null,
		dl([
			['Kind', KIND_LABEL[j.kind] || j.kind],
			j.branch ? ['Branch', h('code', null, j.branch)] : null,
			j.parent ? ['Parent', h('code', null, j.parent)] : null,
			['Attempt', `${j.attempt} of ${j.max_attempts}`],
			['Created', timeEl(j.created_at)],
			['Started', timeEl(j.started_at)],
			['Finished', timeEl(j.finished_at)],
			names(res.updated, (u) => u.branch) ? ['Updated', names(res.updated, (u) => u.branch)] : null,
			names(res.skipped, (x) => x) ? ['Skipped', names(res.skipped, (x) => x)] : null,
			names(res.merged, (x) => x) ? ['Merged', names(res.merged, (x) => x)] : null,
			['Log (API)', h('code', null, (j.links && j.links.log) || '')],
		]),
	);
	// The log: fetched with the token (a plain link could not send it),
	// again whenever the job's status changes.
	if (logFetch.id !== id || logFetch.status !== j.status) {
		logFetch = {id, status: j.status};
		loadLog(j);
	}
}

async function loadLog(j) {
	const pre = $('job-log');
	const url = (j.links && j.links.log) || `/v1/repos/${seg(M.name)}/jobs/${j.id}/log`;
	setText(pre, 'Loading the log…');
	try {
		const r = await request(url, {accept: 'text/plain'});
		if (M.detailJob !== j.id) return;
		setText(pre, r.text || '(the log is empty)');
	} catch (e) {
		if (M.detailJob !== j.id) return;
		setText(pre, e instanceof ApiError ? `The log is not available (${e.status}): ${e.message}` : String(e));
	}
}

// --- loading a repo ---------------------------------------------------------------------

const SEQ_KEY = 'repoflow.seq.';
function seqHint(repo) {
	try {
		const v = JSON.parse(sessionStorage.getItem(SEQ_KEY + repo.name) || 'null');
		if (v && v.created_at === repo.created_at && Number.isInteger(v.seq)) return v.seq;
	} catch {
		/* no hint */
	}
	return 0;
}
function saveSeqHint() {
	if (!M.repo || !feed) return;
	try {
		sessionStorage.setItem(SEQ_KEY + M.repo.name, JSON.stringify({created_at: M.repo.created_at, seq: feed.seq}));
	} catch {
		/* fine */
	}
}

// Read the repo's whole state from the API into the model. Returns false
// when the repo changed meanwhile.
async function readState(gen, name) {
	const base = `/v1/repos/${seg(name)}`;
	const [ov, br, recent, active, tasks] = await Promise.all([
		get(base),
		get(`${base}/branches`),
		get(`${base}/jobs?limit=50`),
		get(`${base}/jobs?status=queued,running&limit=200`),
		get(`${base}/tasks?limit=200`),
	]);
	if (gen !== M.gen) return false;
	M.repo = ov.data;
	updateRepoInList(ov.data);
	M.branches = new Map();
	for (const b of br.data.branches || []) M.branches.set(b.name, b);
	for (const j of [...(recent.data.jobs || []), ...(active.data.jobs || [])]) setJob(j);
	for (const t of tasks.data.tasks || []) setTask(t);
	// The attach jobs of pending tasks, when the job lists did not have them.
	for (const t of M.tasks.values()) {
		const id = taskJobId(t);
		if (t.state === 'pending_branch_attach' && id !== null && !M.jobs.has(id)) {
			get(`${base}/jobs/${id}`).then(
				(r) => gen === M.gen && setJob(r.data),
				() => {},
			);
		}
	}
	for (const b of M.branches.values()) wantTask(b.task_id);
	return true;
}

async function openRepo(name) {
	stopRepo();
	M.gen += 1;
	const gen = M.gen;
	M.name = name;
	resetModel();
	renderRepos();
	show('repo', true);
	show('repo-placeholder', false);
	setText($('repo-title'), name);
	replaceChildren($('overview'), h('p', {class: 'muted'}, 'Loading…'));
	setText($('repo-error'), '');
	$('repo-error').hidden = true;
	replaceChildren(
		$('repo-actions'),
		['sync_repo:', 'restack_repo:', 'register_existing_branch:*', 'task:*'].map((k) => widget(k).el),
	);
	setConn('loading', 'Loading…');
	try {
		// Where the feed stands now, then the state, then every event after
		// that place: nothing that happens meanwhile is missed, and what the
		// state already shows is applied again harmlessly, in order.
		const ov = await get(`/v1/repos/${seg(name)}`);
		if (gen !== M.gen) return;
		const after = await tailSeq(name, seqHint(ov.data));
		if (gen !== M.gen) return;
		if (!(await readState(gen, name))) return;
		feed = new Feed({
			repo: name,
			after,
			onEvent: applyEvent,
			onBatchEnd: saveSeqHint,
			onStatus: setConn,
			busy: () => [...M.jobs.values()].some(jobActive) || [...M.tasks.values()].some((t) => t.state === 'pending_branch_attach'),
			onResync: async () => {
				await readState(gen, name);
				schedule('overview', 'tree', 'jobs', 'tasks', 'detail');
				return null;
			},
		});
		await feed.poll();
		if (gen !== M.gen) return;
		saveSeqHint();
		schedule('overview', 'tree', 'jobs', 'tasks', 'detail');
		flush();
		document.body.dataset.ready = name;
		feed.start();
	} catch (e) {
		if (gen !== M.gen) return;
		if (e instanceof ApiError && e.status === 401) return;
		const msg =
			e instanceof ApiError && e.status === 404
				? `There is no repo called ${name}.`
				: e instanceof ApiError && e.status === 403
					? `This token may not see the repo ${name} (403).`
					: `Could not load ${name}: ${e.message || e}`;
		setText($('repo-error'), msg);
		$('repo-error').hidden = false;
		setConn('down', 'Not connected');
		// Try again while the page is open, unless it cannot get better.
		if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 403)) {
			setTimeout(() => {
				if (gen === M.gen) openRepo(name);
			}, 3000);
		}
	}
}

function stopRepo() {
	if (feed) feed.stop();
	feed = null;
	delete document.body.dataset.ready;
}

// --- routing, the token, start-up ----------------------------------------------------

function parseRoute() {
	const m = location.hash.match(/^#\/repos\/([^/]+)(?:\/jobs\/(\d+)(?:\/log)?)?\/?$/);
	if (!m) return {repo: null, job: null};
	let repo;
	try {
		repo = decodeURIComponent(m[1]);
	} catch {
		repo = m[1];
	}
	return {repo, job: m[2] ? Number(m[2]) : null};
}

function route() {
	if (!getToken()) return;
	const r = parseRoute();
	if (!r.repo) {
		if (M.repos.length === 1) {
			location.replace(`#/repos/${seg(M.repos[0].name)}`);
			return;
		}
		stopRepo();
		M.name = null;
		M.gen += 1;
		show('repo', false);
		show('repo-placeholder', true);
		setConn('idle', '');
		renderRepos();
		return;
	}
	if (r.repo !== M.name) openRepo(r.repo);
	const prev = M.detailJob;
	M.detailJob = r.job;
	if (r.job && !M.jobs.has(r.job)) {
		const gen = M.gen;
		get(`/v1/repos/${seg(r.repo)}/jobs/${r.job}`).then(
			(res) => gen === M.gen && setJob(res.data),
			() => {},
		);
	}
	logFetch = {id: null, status: null};
	renderDetail();
	if (r.job && r.job !== prev) $('job-detail-title').focus();
}

async function loadRepos() {
	const r = await get('/v1/repos');
	M.repos = (r.data && r.data.repos) || [];
	renderRepos();
}

let loggingIn = false;

function showLogin(message) {
	stopRepo();
	M.name = null;
	M.gen += 1;
	show('login', true);
	show('app', false);
	$('signout').hidden = true;
	setConn('idle', '');
	const err = $('login-error');
	setText(err, message || '');
	err.hidden = !message;
	const input = $('token');
	input.setAttribute('aria-invalid', message ? 'true' : 'false');
	input.focus();
}

function signOut(message) {
	setToken('');
	closeDialog();
	showLogin(message);
}

async function enter(reposLoaded = false) {
	show('login', false);
	show('app', true);
	$('signout').hidden = false;
	try {
		if (!reposLoaded) await loadRepos();
	} catch (e) {
		if (e instanceof ApiError && e.status === 401) return;
		setConn('down', `Cannot list the repos: ${e.message}`);
		setTimeout(() => getToken() && enter(), 3000);
		return;
	}
	route();
}

async function onLogin(e) {
	e.preventDefault();
	const input = $('token');
	const tok = input.value.trim();
	if (!tok) {
		showLogin('Enter a token.');
		return;
	}
	const btn = $('login-submit');
	btn.disabled = true;
	loggingIn = true;
	setToken(tok);
	try {
		await loadRepos();
		input.value = '';
		loggingIn = false;
		btn.disabled = false;
		await enter(true);
	} catch (err) {
		loggingIn = false;
		btn.disabled = false;
		setToken('');
		if (err instanceof ApiError && err.status === 401) {
			showLogin('The API refused this token (401 Unauthorized): it is unknown, mistyped or revoked.');
		} else if (err instanceof ApiError && err.status === 403) {
			showLogin('This token may not list repos (403 Forbidden).');
		} else {
			showLogin(`Could not check the token: ${err.message || err}`);
		}
	}
}

function boot() {
	onUnauthorized(() => {
		if (loggingIn) return;
		signOut('The API refused the token (401 Unauthorized): it is unknown or was revoked. Enter a valid one.');
	});
	$('login-form').addEventListener('submit', onLogin);
	$('signout').addEventListener('click', () => signOut(''));
	$('job-log-reload').addEventListener('click', () => {
		const j = M.jobs.get(M.detailJob);
		if (j) loadLog(j);
	});
	window.addEventListener('hashchange', route);
	tree = new StackTree($('tree'), {widget, taskFor});
	// Keep the repos list fresh (other repos have no feed here).
	setInterval(() => {
		if (getToken() && !$('app').hidden && !dialogOpen()) loadRepos().catch(() => {});
	}, 30000);
	if (!getToken()) showLogin('');
	else enter();
}

boot();
