// actions.js - an action button and the live state of its job.
//
// Each widget is keyed ("restack_subtree:feat-1", "sync_repo:",
// "task:feat-9") and shows the newest job (or task) of its key, as the API
// last reported it: `queued`, `running` with step/total/detail, `completed`,
// `error` with the problem's detail and any conflict paths, `canceled`; a
// Cancel button while the job is queued or running. The widget element is
// created once per key and updated in place, so its `data-state` attribute
// changes (and can be watched) as the job moves.
//
// data-state: idle | sending | rejected | queued | running | completed |
// error | canceled, or for tasks pending_branch_attach | ready | attach_failed.

import {h, replaceChildren, setAttr, setText, uid} from './dom.js';

const ACTIVE = new Set(['queued', 'running']);

export function jobActive(job) {
	return Boolean(job) && ACTIVE.has(job.status);
}

export class ActionWidget {
	// {key, label, ariaLabel, onActivate(widget), onCancel(job, widget)}
	constructor(spec) {
		this.key = spec.key;
		this.onActivate = spec.onActivate;
		this.onCancel = spec.onCancel;
		this.job = null;
		this.task = null;
		this.statusId = uid('st');
		this.button = h(
			'button',
			{
				type: 'button',
				class: 'act',
				'aria-label': spec.ariaLabel || null,
				'aria-describedby': this.statusId,
				dataset: {actionKey: spec.key},
				onclick: () => this.onActivate(this),
			},
			spec.label,
		);
		this.badge = h('span', {class: 'badge s-idle'});
		this.progress = h('progress', {max: '1', value: '0', hidden: true});
		this.detail = h('span', {class: 'st-detail'});
		this.status = h(
			'span',
			{class: 'job-state', id: this.statusId, role: 'status', 'aria-live': 'polite'},
			this.badge,
			this.progress,
			this.detail,
		);
		this.cancel = h(
			'button',
			{
				type: 'button',
				class: 'cancel',
				hidden: true,
				'aria-label': `Cancel: ${spec.ariaLabel || spec.label}`,
				onclick: () => this.cancelJob(),
			},
			'Cancel',
		);
		this.errorBox = h('div', {class: 'job-error', hidden: true});
		this.el = h(
			'div',
			{class: 'action', dataset: {actionKey: spec.key, state: 'idle'}},
			this.button,
			this.status,
			this.cancel,
			this.errorBox,
		);
	}

	async cancelJob() {
		if (!this.job) return;
		const hadFocus = document.activeElement === this.cancel;
		this.cancel.disabled = true;
		try {
			await this.onCancel(this.job, this);
		} finally {
			this.cancel.disabled = false;
			if (hadFocus && this.cancel.hidden) this.button.focus();
		}
	}

	setState(state) {
		setAttr(this.el, 'data-state', state);
		this.badge.className = `badge s-${state}`;
	}

	// While the request that starts the job is on its way.
	sending() {
		this.setState('sending');
		setText(this.badge, 'sending');
		this.progress.hidden = true;
		setText(this.detail, '');
		this.cancel.hidden = true;
		this.errorBox.hidden = true;
	}

	// The request was refused (problem+json): show the server's words.
	rejected(err) {
		this.setState('rejected');
		setText(this.badge, err.status ? `refused (${err.status})` : 'not sent');
		this.progress.hidden = true;
		setText(this.detail, '');
		this.cancel.hidden = true;
		const lines = err.fieldErrors || [];
		replaceChildren(this.errorBox, h('p', null, err.message), lines.length ? h('ul', null, lines.map((l) => h('li', null, l))) : null);
		this.errorBox.hidden = false;
	}

	// Show a job (the newest of this key).
	showJob(job) {
		this.job = job;
		this.task = null;
		if (!job) {
			this.setState('idle');
			setText(this.badge, '');
			this.progress.hidden = true;
			setText(this.detail, '');
			this.cancel.hidden = true;
			this.errorBox.hidden = true;
			setAttr(this.el, 'data-job-id', null);
			return;
		}
		setAttr(this.el, 'data-job-id', job.id);
		this.setState(job.status);
		setText(this.badge, job.status);
		this.showProgress(job);
		this.showCancel(job);
		this.showError(job);
	}

	showProgress(job) {
		const p = job.progress || {};
		let text = '';
		if (job.status === 'running') {
			if (p.total > 0) {
				this.progress.max = p.total;
				this.progress.value = Math.min(p.step || 0, p.total);
				this.progress.hidden = false;
				text = `${p.step || 0}/${p.total}`;
			} else {
				this.progress.hidden = true;
			}
			if (p.detail) text += `${text ? ' · ' : ''}${p.detail}`;
			if (job.cancel_requested) text += `${text ? ' · ' : ''}cancel requested`;
		} else {
			this.progress.hidden = true;
			if (job.status === 'queued') {
				text = job.attempt > 0 && job.error ? `retry ${job.attempt + 1} of ${job.max_attempts}` : `job #${job.id}`;
			} else if (job.status === 'completed' || job.status === 'canceled') {
				text = job.message || '';
			}
		}
		setText(this.detail, text);
		this.detail.title = job.message || '';
	}

	showCancel(job) {
		const hadFocus = document.activeElement === this.cancel;
		const show = jobActive(job);
		this.cancel.hidden = !show;
		if (show) setText(this.cancel, job.cancel_requested ? 'Cancel requested' : 'Cancel');
		this.cancel.disabled = show && Boolean(job.cancel_requested);
		if (hadFocus && !show) this.button.focus();
	}

	showError(job) {
		if (job.status !== 'error' && !(job.status === 'queued' && job.error)) {
			this.errorBox.hidden = true;
			replaceChildren(this.errorBox);
			return;
		}
		const e = job.error || {};
		const conflicts = (job.result && Array.isArray(job.result.conflicts) && job.result.conflicts) || [];
		replaceChildren(
			this.errorBox,
			h('p', {class: 'err-title'}, e.title || 'The job failed'),
			e.detail ? h('p', {class: 'err-detail'}, e.detail) : null,
			conflicts.length
				? h(
						'ul',
						{class: 'conflicts', 'aria-label': 'Conflicts'},
						conflicts.map((c) =>
							h(
								'li',
								{dataset: {branch: c.branch || ''}},
								'Conflict in ',
								h('strong', null, c.branch || '?'),
								c.commit ? ` picking ${String(c.commit).slice(0, 7)}` : '',
								': ',
								(c.paths || []).map((p, i) => [i ? ', ' : '', h('code', {class: 'path'}, p)]),
							),
						),
					)
				: null,
		);
		this.errorBox.hidden = false;
	}

	// Show a task (create-task widgets): its state, and the attach job's.
	// `task` is the task object as GET …/tasks/{id} returns it (`state`,
	// `head`, `reason`, `job_id`); `job` the job of its `job_id`, if known.
	showTask(task, job) {
		this.task = task;
		this.job = job || null;
		if (!task) {
			this.showJob(null);
			return;
		}
		setAttr(this.el, 'data-task-id', task.id);
		setAttr(this.el, 'data-job-id', job ? job.id : null);
		this.setState(task.state);
		setText(this.badge, task.state);
		this.progress.hidden = true;
		let text = `task #${task.id}`;
		if (task.state === 'pending_branch_attach' && job) text += ` · attach job #${job.id} ${job.status}`;
		if (task.state === 'ready' && task.head) text += ` · at ${String(task.head).slice(0, 7)}`;
		setText(this.detail, text);
		this.detail.title = task.title || '';
		this.cancel.hidden = true;
		if (task.state === 'attach_failed') {
			replaceChildren(
				this.errorBox,
				h('p', {class: 'err-title'}, 'The branch could not be attached'),
				h('p', {class: 'err-detail task-reason'}, taskReason(task, job)),
			);
			this.errorBox.hidden = false;
		} else {
			replaceChildren(this.errorBox);
			this.errorBox.hidden = true;
		}
	}
}

// Why a task ended attach_failed: its `reason` (the attach job's error
// detail, or that the job was canceled); the job's own detail only if a
// task somehow has none.
export function taskReason(task, job) {
	if (typeof task.reason === 'string' && task.reason) return task.reason;
	if (job && job.error && job.error.detail) return job.error.detail;
	if (job && job.status === 'canceled') return `The attach job #${job.id} was canceled.`;
	return 'The branch could not be attached.';
}
