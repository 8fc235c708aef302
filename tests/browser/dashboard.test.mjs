// tests/browser/dashboard.test.mjs - the dashboard in a real browser,
// against the private stack run.sh started. Prints TAP; exits 1 when a
// test failed. Run by run.sh, which exports:
//   BASE (the stack), TOKEN (admin), TRASH (the test directory),
//   ARTIFACTS (screenshots), CHROMIUM, FIXTURE (fixture.sh), top_srcdir.
//
// A job is watched as the page shows it: a MutationObserver installed in
// the page records every value the action's `data-state` takes (and the
// text shown with it), so a state the page showed only briefly is still
// seen. Nothing is faked: a job stays `running` for a moment because the
// remote's pre-receive hook is slow (fixture.sh, fx_slow_hook).

import {execFile} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import {chromium} from 'playwright-core';

const run = promisify(execFile);
const env = (k) => {
	const v = process.env[k];
	if (!v) {
		console.log(`Bail out! ${k} is not set (run tests/browser/run.sh)`);
		process.exit(1);
	}
	return v;
};
const BASE = env('BASE');
const TOKEN = env('TOKEN');
const TRASH = env('TRASH');
const ARTIFACTS = env('ARTIFACTS');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FIXTURE = env('FIXTURE');
const VERBOSE = Boolean(process.env.BROWSER_VERBOSE);

// --- a small TAP harness ------------------------------------------------------------

const tests = [];
function test(name, fn) {
	tests.push({name, fn});
}

function diag(text) {
	for (const line of String(text).split('\n')) console.log(`# ${line}`);
}

class Failure extends Error {}
function assert(cond, message) {
	if (!cond) throw new Failure(message);
}
function assertEq(actual, expected, what) {
	if (actual !== expected) throw new Failure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// --- the API, from the test's side (setup and checks only) --------------------------

async function api(method, p, body) {
	const res = await fetch(BASE + p, {
		method,
		headers: {Authorization: `Bearer ${TOKEN}`, ...(body ? {'Content-Type': 'application/json'} : {})},
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await res.text();
	let data = null;
	try {
		data = JSON.parse(text);
	} catch {
		data = text;
	}
	return {status: res.status, data};
}

async function fixture(...args) {
	try {
		await run('bash', [FIXTURE, ...args], {env: process.env, timeout: 120000});
	} catch (e) {
		throw new Failure(`fixture.sh ${args.join(' ')} failed: ${e.stderr || e.message}`);
	}
}

function slowPushes(repo, seconds) {
	fs.mkdirSync(path.join(TRASH, 'slow'), {recursive: true});
	const f = path.join(TRASH, 'slow', repo);
	if (seconds) fs.writeFileSync(f, `${seconds}\n`);
	else fs.rmSync(f, {force: true});
}

// --- the browser -----------------------------------------------------------------------

let context = null;
let userDataDir = null;

async function launch() {
	userDataDir = fs.mkdtempSync(path.join(TRASH, 'chromium-profile-'));
	context = await chromium.launchPersistentContext(userDataDir, {
		executablePath: CHROMIUM,
		headless: true,
		viewport: {width: 1100, height: 900},
		// playwright adds --headless itself (headless: true).
		args: [
			'--no-sandbox',
			'--disable-gpu',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
			'--disable-quic',
		],
		handleSIGTERM: true,
		handleSIGINT: true,
		handleSIGHUP: true,
	});
	context.setDefaultTimeout(15000);
}

// A new tab (its own sessionStorage), with the page's errors collected.
async function newPage(t, viewport) {
	const page = await context.newPage();
	if (viewport) await page.setViewportSize(viewport);
	t.page = page;
	t.pageErrors = [];
	page.on('pageerror', (e) => t.pageErrors.push(e.message));
	page.on('console', (m) => {
		if (VERBOSE) diag(`console ${m.type()}: ${m.text()}`);
	});
	return page;
}

// Open the dashboard on a repo and sign in with the token prompt.
async function signIn(page, repo) {
	await page.goto(`${BASE}/${repo ? `#/repos/${encodeURIComponent(repo)}` : ''}`);
	await page.locator('#token').waitFor({state: 'visible'});
	await page.fill('#token', TOKEN);
	await page.click('#login-submit');
	if (repo) await page.locator(`body[data-ready="${repo}"]`).waitFor({state: 'attached'});
	else await page.locator('#repo-list li').first().waitFor();
}

const actionSel = (key) => `div.action[data-action-key="${key}"]`;
const rowSel = (branch) => `li.node[data-branch="${branch}"] > .row`;

// Record every data-state the element matching `sel` takes, from now on.
async function watch(page, sel) {
	await page.evaluate((s) => {
		window.__rec = window.__rec || {};
		const rec = {states: [], seen: []};
		window.__rec[s] = rec;
		const push = (v) => {
			if (v && rec.states[rec.states.length - 1] !== v) rec.states.push(v);
		};
		const look = () => {
			const el = document.querySelector(s);
			if (!el) return;
			push(el.dataset.state);
			const text = (el.querySelector('.job-state') || el).textContent.replace(/\s+/g, ' ').trim();
			const last = rec.seen[rec.seen.length - 1];
			if (!last || last.state !== el.dataset.state || last.text !== text) rec.seen.push({state: el.dataset.state, text});
		};
		look();
		new MutationObserver((records) => {
			for (const r of records) {
				// Each change's old value, in order, then the value now: every
				// state the element held, even within one task.
				if (r.type === 'attributes' && r.attributeName === 'data-state' && r.target.matches(s)) push(r.oldValue);
			}
			look();
		}).observe(document.body, {
			subtree: true,
			childList: true,
			characterData: true,
			attributes: true,
			attributeFilter: ['data-state'],
			attributeOldValue: true,
		});
	}, sel);
}

async function recorded(page, sel) {
	return page.evaluate((s) => window.__rec[s], sel);
}

// Wait until the action shows one of `states`; fails early on another final state.
async function waitState(page, sel, states, timeout = 30000) {
	const want = Array.isArray(states) ? states : [states];
	const handle = await page.waitForFunction(
		([s, w]) => {
			const el = document.querySelector(s);
			if (!el) return false;
			const st = el.dataset.state;
			if (w.includes(st)) return st;
			if (['completed', 'error', 'canceled', 'rejected', 'attach_failed'].includes(st)) return `unexpected:${st}`;
			return false;
		},
		[sel, want],
		{timeout, polling: 50},
	);
	const st = await handle.jsonValue();
	if (String(st).startsWith('unexpected:')) {
		const text = await page.locator(sel).innerText();
		throw new Failure(`${sel} ended ${st.slice(11)}, not ${want.join('/')}: ${text.replace(/\s+/g, ' ')}`);
	}
	return st;
}

// `seq` contains the states of `want` in this order (others may sit between).
function inOrder(seq, want) {
	let i = 0;
	for (const s of seq) if (s === want[i]) i += 1;
	return i === want.length;
}

async function screenshot(page, name, fullPage = true) {
	const file = path.join(ARTIFACTS, `${name}.png`);
	await page.screenshot({path: file, fullPage});
	return file;
}

async function noBadge(page, branch, badge, timeout = 15000) {
	await page.waitForFunction(
		([b, k]) => {
			const row = [...document.querySelectorAll('li.node')].find((li) => li.dataset.branch === b);
			return row && !row.querySelector(`:scope > .row [data-badge="${k}"]`);
		},
		[branch, badge],
		{timeout, polling: 100},
	);
}

async function hasBadge(page, branch, badge) {
	return page.evaluate(
		([b, k]) => {
			const row = [...document.querySelectorAll('li.node')].find((li) => li.dataset.branch === b);
			return Boolean(row && row.querySelector(`:scope > .row [data-badge="${k}"]`));
		},
		[branch, badge],
	);
}

// --- the tests -----------------------------------------------------------------------------

test('token prompt: a wrong token gets a clear 401 error, the right one shows the repos', async (t) => {
	const page = await newPage(t);
	await page.goto(`${BASE}/`);
	await page.locator('#token').waitFor({state: 'visible'});
	assertEq(await page.evaluate(() => document.activeElement && document.activeElement.id), 'token', 'focus on load');
	await page.fill('#token', 'rf_not-a-real-token');
	await page.click('#login-submit');
	await page.locator('#login-error').waitFor({state: 'visible'});
	const err = await page.textContent('#login-error');
	assert(/401/.test(err) && /refused/i.test(err), `the error says 401 and refused: "${err}"`);
	assertEq(await page.evaluate(() => sessionStorage.getItem('repoflow.token')), null, 'a refused token is not kept');
	await page.fill('#token', TOKEN);
	await page.click('#login-submit');
	await page.locator('#repo-list li[data-repo="restack"]').waitFor();
	const names = await page.$$eval('#repo-list li', (lis) => lis.map((li) => li.dataset.repo));
	for (const r of ['cancel', 'conflict', 'keys', 'reconnect', 'reload', 'restack', 'tasks']) assert(names.includes(r), `repo ${r} listed (got ${names})`);
	assertEq(await page.evaluate(() => sessionStorage.getItem('repoflow.token')), TOKEN, 'token in sessionStorage');
	await screenshot(page, '01-token-repos');
});

test('strings from the API are shown as text, never as HTML', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'restack');
	const name = '<b>bold</b>';
	const row = page.locator(`li.node[data-branch="${name}"]`);
	await row.waitFor();
	assertEq(await row.locator(':scope > .row .name').textContent(), name, 'the branch name, as text');
	assertEq(await row.locator('b').count(), 0, '<b> elements in the row');
	await screenshot(page, '02-escaping');
});

test('restack a branch that needs it: queued, running with progress, completed, badge cleared, no reload', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'restack');
	await page.evaluate(() => {
		window.__sameDocument = true;
	});
	assert(await hasBadge(page, 'feat-1', 'needs-restack'), 'feat-1 shows "needs restack" before');
	const sel = actionSel('restack_subtree:feat-1');
	await watch(page, sel);
	slowPushes('restack', 2);
	try {
		await page.locator(`${sel} button.act`).click();
		await waitState(page, sel, 'running');
		assert(await page.locator(`${sel} button.cancel`).isVisible(), 'Cancel offered while running');
		await waitState(page, sel, 'completed', 60000);
	} finally {
		slowPushes('restack', 0);
	}
	const rec = await recorded(page, sel);
	diag(`states shown: ${rec.states.join(' -> ')}`);
	assert(inOrder(rec.states, ['queued', 'running', 'completed']), `queued, running, completed in order (got ${rec.states.join(', ')})`);
	const bad = rec.states.filter((s) => !['idle', 'sending', 'queued', 'running', 'completed'].includes(s));
	assertEq(bad.length, 0, `other states shown (${bad})`);
	const progress = rec.seen.filter((s) => s.state === 'running').map((s) => s.text);
	assert(progress.some((x) => /\d+\/\d+/.test(x)), `running showed step/total (saw ${JSON.stringify(progress)})`);
	assert(await page.locator(`${sel} button.cancel`).isHidden(), 'no Cancel once completed');
	await noBadge(page, 'feat-1', 'needs-restack');
	for (const b of ['feat-2', 'feat-3']) assert(!(await hasBadge(page, b, 'needs-restack')), `${b} needs no restack`);
	assert(await page.evaluate(() => window.__sameDocument === true), 'the page was not reloaded');
	// The jobs panel shows the job, completed, with a link to its log.
	const jobId = await page.locator(sel).getAttribute('data-job-id');
	const jobRow = page.locator(`#jobs-body tr[data-job-id="${jobId}"]`);
	assertEq(await jobRow.getAttribute('data-state'), 'completed', 'jobs panel row');
	assertEq(await jobRow.locator('a', {hasText: 'log'}).getAttribute('data-api'), `/v1/repos/restack/jobs/${jobId}/log`, 'log link');
	await screenshot(page, '03-restack-completed');
});

test('create a task on a branch only the remote has: pending_branch_attach, then ready', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'tasks');
	assertEq(await page.locator('li.node[data-branch="remote-only"]').count(), 0, 'remote-only is not in the projection yet');
	const sel = actionSel('task:*');
	await watch(page, sel);
	await page.locator(`${sel} button.act`).click();
	const dlg = page.locator('#dialog');
	await dlg.locator('input[name="branch"]').fill('remote-only');
	await dlg.locator('input[name="title"]').fill('Work on the remote-only branch');
	await dlg.locator('button[type="submit"]').click();
	try {
		await waitState(page, sel, 'ready', 60000);
	} catch (e) {
		const dialogError = (await dlg.isVisible()) ? await dlg.locator('.form-error').innerText() : '';
		const widget = await page.locator(sel).innerText();
		throw new Failure(`${e.message}${dialogError ? `; the dialog says: ${dialogError}` : ''}; the button shows: ${widget.replace(/\s+/g, ' ')}`);
	} finally {
		await screenshot(page, '04-task-ready');
	}
	const rec = await recorded(page, sel);
	diag(`states shown: ${rec.states.join(' -> ')}`);
	assert(inOrder(rec.states, ['pending_branch_attach', 'ready']), `pending_branch_attach then ready (got ${rec.states.join(', ')})`);
	await page.locator('#tasks-body li[data-branch="remote-only"][data-state="ready"]').waitFor();
	await page.locator('li.node[data-branch="remote-only"] .task-chip[data-state="ready"]').waitFor();
});

test('a conflict: the restack ends in error with the conflicting path', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'conflict');
	const sel = actionSel('restack_subtree:feat-1');
	await watch(page, sel);
	await page.locator(`${sel} button.act`).click();
	await waitState(page, sel, 'error');
	const box = page.locator(`${sel} .job-error`);
	await box.waitFor({state: 'visible'});
	const text = await box.innerText();
	assert(/conflict/i.test(text), `the error mentions the conflict: ${text}`);
	const paths = await box.locator('code.path').allTextContents();
	assertEq(paths.join(' '), 'lines.txt', 'conflict paths shown');
	assertEq(await box.locator('.conflicts li').first().getAttribute('data-branch'), 'feat-1', 'conflicting branch');
	assert(await hasBadge(page, 'feat-1', 'needs-restack'), 'feat-1 still needs a restack');
	const rec = await recorded(page, sel);
	assert(inOrder(rec.states, ['queued', 'error']), `queued then error (got ${rec.states.join(', ')})`);
	await screenshot(page, '05-conflict-error');
	// The job's log link (the jobs panel) opens its detail and log.
	const jobId = await page.locator(sel).getAttribute('data-job-id');
	await page.locator(`#jobs-body tr[data-job-id="${jobId}"] a`, {hasText: 'log'}).click();
	await page.locator('#job-detail').waitFor({state: 'visible'});
	assert((await page.textContent('#job-detail-title')).startsWith(`Job #${jobId}`), 'the detail names the job');
	assertEq((await page.locator('#job-summary code.path').allTextContents()).join(' '), 'lines.txt', 'conflict paths in the detail');
	await page.waitForFunction(() => {
		const t = document.getElementById('job-log').textContent;
		return t && !t.startsWith('Loading');
	});
	diag(`log: ${(await page.textContent('#job-log')).split('\n')[0]}`);
	await screenshot(page, '05-conflict-job-log');
});

test('reload mid-job: the running job, its progress and Cancel are restored from the API, then it completes', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'reload');
	const sel = actionSel('restack_repo:');
	slowPushes('reload', 4);
	try {
		await page.locator(`${sel} button.act`).click();
		await waitState(page, sel, 'running');
		const jobId = await page.locator(sel).getAttribute('data-job-id');
		await page.reload();
		// The token survives the reload (sessionStorage); the state is read again.
		await page.locator('body[data-ready="reload"]').waitFor({state: 'attached'});
		await watch(page, sel);
		assertEq(await page.locator(sel).getAttribute('data-state'), 'running', 'state after reload');
		assertEq(await page.locator(sel).getAttribute('data-job-id'), jobId, 'the same job after reload');
		assert(await page.locator(`${sel} button.cancel`).isVisible(), 'Cancel offered after reload');
		assertEq(await page.locator(`#jobs-body tr[data-job-id="${jobId}"]`).getAttribute('data-state'), 'running', 'jobs panel after reload');
		assert(await hasBadge(page, 'feat-1', 'needs-restack'), 'feat-1 still needs a restack while the job runs');
		await screenshot(page, '06-reload-restored-running');
		await waitState(page, sel, 'completed', 60000);
	} finally {
		slowPushes('reload', 0);
	}
	await noBadge(page, 'feat-1', 'needs-restack');
	const rec = await recorded(page, sel);
	assert(inOrder(rec.states, ['running', 'completed']), `running then completed after the reload (got ${rec.states.join(', ')})`);
	await screenshot(page, '06-reload-completed');
});

test('cancel: a queued job is canceled at once; a running one is asked to stop', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'cancel');
	const restack = actionSel('restack_repo:');
	const sync = actionSel('sync_repo:');
	await watch(page, sync);
	slowPushes('cancel', 3);
	try {
		await page.locator(`${restack} button.act`).click();
		await waitState(page, restack, 'running');
		// The repo's jobs run one at a time: this sync waits behind the restack.
		await page.locator(`${sync} button.act`).click();
		await waitState(page, sync, 'queued');
		await page.locator(`${sync} button.cancel`).click();
		await waitState(page, sync, 'canceled');
		assert(await page.locator(`${sync} button.cancel`).isHidden(), 'no Cancel on a canceled job');
		const rec = await recorded(page, sync);
		assert(inOrder(rec.states, ['queued', 'canceled']), `queued then canceled (got ${rec.states.join(', ')})`);
		assert(!rec.states.includes('running'), 'the canceled sync never ran');
		// Cancel the running restack: the button says so, the job stops at its
		// next step boundary (or completes, if it was past the last one).
		await page.locator(`${restack} button.cancel`).click();
		await page.locator(`${restack} button.cancel`, {hasText: 'Cancel requested'}).waitFor();
		const end = await waitState(page, restack, ['canceled', 'completed'], 60000);
		diag(`the running restack ended ${end}`);
	} finally {
		slowPushes('cancel', 0);
	}
	await screenshot(page, '07-cancel');
});

test('keyboard only: Tab to Reparent, a dialog that traps focus and closes on Escape, reparent feat-3 onto main', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'keys');
	const sel = actionSel('reparent_branch:feat-3');
	const button = `${sel} button.act`;
	// From the top of the page, Tab until the Reparent button of feat-3 has focus.
	await page.evaluate(() => document.activeElement && document.activeElement.blur());
	let reached = false;
	for (let i = 0; i < 120 && !reached; i++) {
		await page.keyboard.press('Tab');
		reached = await page.evaluate((s) => document.activeElement === document.querySelector(s), button);
	}
	assert(reached, 'Tab reaches the Reparent button of feat-3');
	const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
	assert(outline !== 'none', `the focused button shows a focus outline (outline-style ${outline})`);
	// Enter opens the dialog, focus in it.
	await page.keyboard.press('Enter');
	const dlg = page.locator('#dialog');
	await dlg.waitFor({state: 'visible'});
	assert(await page.evaluate(() => document.getElementById('dialog').contains(document.activeElement)), 'focus moves into the dialog');
	// Escape closes it and gives focus back to the button.
	await page.keyboard.press('Escape');
	await dlg.waitFor({state: 'hidden'});
	assert(await page.evaluate((s) => document.activeElement === document.querySelector(s), button), 'focus back on Reparent after Escape');
	// Space opens it again; Tab and Shift+Tab stay inside.
	await page.keyboard.press('Space');
	await dlg.waitFor({state: 'visible'});
	for (let i = 0; i < 7; i++) {
		await page.keyboard.press('Tab');
		assert(await page.evaluate(() => document.getElementById('dialog').contains(document.activeElement)), `focus stays in the dialog after Tab ${i + 1}`);
	}
	for (let i = 0; i < 4; i++) {
		await page.keyboard.press('Shift+Tab');
		assert(await page.evaluate(() => document.getElementById('dialog').contains(document.activeElement)), `focus stays in the dialog after Shift+Tab ${i + 1}`);
	}
	// Choose the parent with the keyboard: focus the select (Tab until it), Home = the trunk.
	for (let i = 0; i < 6 && !(await page.evaluate(() => document.activeElement.tagName === 'SELECT')); i++) await page.keyboard.press('Tab');
	assertEq(await page.evaluate(() => document.activeElement.tagName), 'SELECT', 'focus on the parent select');
	const options = await page.$$eval('#dialog select option', (os) => os.map((o) => o.value));
	assert(!options.includes('feat-3'), `feat-3 is not offered as its own parent (${options})`);
	assert(options.includes('main') && options.includes('feat-1'), `the trunk and tracked branches are offered (${options})`);
	await page.keyboard.press('Home');
	assertEq(await page.$eval('#dialog select', (s) => s.value), 'main', 'chosen parent');
	await watch(page, sel);
	await page.keyboard.press('Tab');
	assertEq(await page.evaluate(() => document.activeElement.textContent), 'Reparent', 'Tab from the select reaches the submit button');
	await page.keyboard.press('Enter');
	await dlg.waitFor({state: 'hidden'});
	await waitState(page, sel, 'completed', 60000);
	const rec = await recorded(page, sel);
	assert(inOrder(rec.states, ['queued', 'completed']), `queued then completed (got ${rec.states.join(', ')})`);
	// The tree shows feat-3 under main now.
	await page.waitForFunction(() => {
		const li = [...document.querySelectorAll('li.node')].find((x) => x.dataset.branch === 'feat-3');
		const parent = li && li.parentElement && li.parentElement.closest('li.node');
		return parent && parent.dataset.branch === 'main';
	});
	const focused = await page.evaluate(() => document.activeElement && (document.activeElement.closest('[data-action-key]') || {}).dataset?.actionKey);
	assertEq(focused, 'reparent_branch:feat-3', 'focus stays on the Reparent button after the tree moved');
	await screenshot(page, '08-keyboard-reparented');
});

test('reconnect: what happened while the browser was offline shows once it is back', async (t) => {
	const page = await newPage(t);
	await signIn(page, 'reconnect');
	assert(!(await hasBadge(page, 'feat-1', 'needs-restack')), 'nothing needs a restack at first');
	await context.setOffline(true);
	try {
		await page.locator('#conn[data-kind="down"]').waitFor({state: 'attached', timeout: 20000});
		// Meanwhile the trunk moves and a sync sees it.
		await fixture('trunk_moves', 'reconnect');
	} finally {
		await context.setOffline(false);
	}
	await page.waitForFunction(() => ['poll', 'stream'].includes(document.getElementById('conn').dataset.kind), null, {timeout: 30000});
	await page.waitForFunction(
		() => {
			const li = [...document.querySelectorAll('li.node')].find((x) => x.dataset.branch === 'feat-1');
			return li && li.querySelector(':scope > .row [data-badge="needs-restack"]');
		},
		null,
		{timeout: 20000},
	);
	const jobs = (await api('GET', '/v1/repos/reconnect/jobs?limit=1')).data.jobs;
	await page.locator(`#jobs-body tr[data-job-id="${jobs[0].id}"][data-state="completed"]`).waitFor();
	await screenshot(page, '09-reconnected');
});

test('360 px wide: nothing overflows sideways, the stack and its error are readable', async (t) => {
	const page = await newPage(t, {width: 360, height: 780});
	await signIn(page, 'conflict');
	await page.locator(`${actionSel('restack_subtree:feat-1')}[data-state="error"]`).waitFor();
	const overflow = await page.evaluate(() => ({
		doc: document.documentElement.scrollWidth,
		body: document.body.scrollWidth,
		wide: [...document.querySelectorAll('body *')]
			.filter((el) => {
				const r = el.getBoundingClientRect();
				// (Off-screen on purpose, to the left: the skip link, the
				// visually hidden table head. Sideways scrolling comes from
				// the right.)
				return r.width > 0 && r.right > 360.5 && r.left >= 0;
			})
			.slice(0, 5)
			.map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)})`),
	}));
	assert(overflow.doc <= 360 && overflow.body <= 360, `page width ${overflow.doc}/${overflow.body} > 360`);
	assertEq(overflow.wide.join(', '), '', 'elements sticking out');
	for (const b of ['main', 'feat-1', 'feat-2', 'feat-3']) assert(await page.locator(rowSel(b)).isVisible(), `${b} visible`);
	const fs12 = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('.job-error')).fontSize));
	assert(fs12 >= 12, `error text is at least 12px (${fs12})`);
	await screenshot(page, '10-narrow-360');
});

// --- run -----------------------------------------------------------------------------------

async function main() {
	const t0 = Date.now();
	try {
		await launch();
	} catch (e) {
		console.log(`Bail out! cannot start ${CHROMIUM}: ${e.message.split('\n')[0]}`);
		process.exit(1);
	}
	diag(`browser: ${CHROMIUM} ${context.browser() ? context.browser().version() : ''}`);
	let failed = 0;
	let n = 0;
	for (const {name, fn} of tests) {
		n += 1;
		const t = {page: null, pageErrors: []};
		const started = Date.now();
		let error = null;
		try {
			await fn(t);
			if (t.pageErrors.length) throw new Failure(`the page threw: ${t.pageErrors.join('; ')}`);
		} catch (e) {
			error = e;
		}
		const secs = ((Date.now() - started) / 1000).toFixed(1);
		if (!error) {
			console.log(`ok ${n} - ${name}`);
			diag(`${secs} s`);
		} else {
			failed += 1;
			console.log(`not ok ${n} - ${name}`);
			diag(error instanceof Failure ? error.message : error.stack || String(error));
			if (t.page && !t.page.isClosed()) {
				try {
					const f = await screenshot(t.page, `${String(n).padStart(2, '0')}-FAILED`);
					diag(`screenshot: ${f}`);
					fs.writeFileSync(path.join(ARTIFACTS, `${String(n).padStart(2, '0')}-FAILED.txt`), await t.page.locator('body').innerText());
				} catch {
					/* the page is gone */
				}
			}
		}
		if (t.page && !t.page.isClosed()) await t.page.close();
	}
	await context.close();
	fs.rmSync(userDataDir, {recursive: true, force: true});
	console.log(`1..${n}`);
	diag(`${n - failed} passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
	process.exit(failed ? 1 : 0);
}

main().catch((e) => {
	console.log(`Bail out! ${e.stack || e}`);
	if (context) context.close().catch(() => {});
	process.exit(1);
});
