// feed.js - follows one repo's event feed.
//
// The API's contract: a client that (re)connects first reads
// GET …/events?after=<seq> from SQLite, then follows the live stream;
// polling alone must stay a complete path. So this follower:
//
//   - always polls `events?after=` (quickly while there is no stream,
//     slowly as a safety net while there is one);
//   - opens the server-sent event stream when the server has one, and
//     after every (re)open polls once more, so nothing committed between
//     the last poll and the subscription is missed;
//   - applies each event exactly once, in `seq` order (an event at or
//     below the last applied seq is dropped; stream events that arrive
//     while a poll is in flight wait for it);
//   - on a failure reports "reconnecting", backs off, and on recovery
//     asks the app to read the whole state again (onResync), because a
//     gap in what it saw can only be repaired from the API's state.

import {get, seg, streamUrl, ApiError} from './api.js';

const PAGE = 1000;

// The seq of the repo's newest event (or `lower` when there is none
// above it), found without reading the history: `events?after=X&limit=1`
// answers the first event above X, so a doubling probe and a bisection
// need about 2·log2(n) small requests. Every event of the repo up to the
// answer has been committed, so following from it misses nothing.
export async function tailSeq(repo, lower = 0) {
	const first = async (x) => {
		const r = await get(`/v1/repos/${seg(repo)}/events?after=${x}&limit=1`);
		const ev = r.data && r.data.events && r.data.events[0];
		return ev ? ev.seq : null;
	};
	let lo = await first(lower);
	if (lo === null) return lower;
	// lo: a seq that exists; hi: a seq with nothing above it.
	let hi = null;
	for (let step = 1; hi === null; step *= 2) {
		const s = await first(lo + step);
		if (s === null) hi = lo + step;
		else lo = s;
	}
	while (hi - lo > 1) {
		const mid = Math.floor((lo + hi) / 2);
		const s = await first(mid);
		if (s === null) hi = mid;
		else lo = s;
	}
	if (lo === hi) return lo;
	const s = await first(lo);
	return s === null ? lo : s;
}

export class Feed {
	// opts: {repo, after, onEvent(ev), onBatchEnd(), onStatus(kind, text),
	//        onResync() -> Promise<seq>, fastMs, slowMs, streamSafetyMs}
	constructor(opts) {
		this.repo = opts.repo;
		this.seq = opts.after || 0;
		this.onEvent = opts.onEvent;
		this.onBatchEnd = opts.onBatchEnd || (() => {});
		this.onStatus = opts.onStatus || (() => {});
		this.onResync = opts.onResync;
		this.fastMs = opts.fastMs || 1000;
		this.slowMs = opts.slowMs || 2500;
		this.streamSafetyMs = opts.streamSafetyMs || 15000;
		this.busy = () => (opts.busy ? opts.busy() : false);
		this.stopped = false;
		this.es = null;
		this.streamOpen = false;
		this.streamRetryAt = 0;
		this.streamFailures = 0;
		this.polling = false;
		this.held = [];
		this.timer = null;
		this.wakeResolve = null;
		this.failures = 0;
	}

	start() {
		this.loop();
	}

	stop() {
		this.stopped = true;
		this.closeStream();
		if (this.timer) clearTimeout(this.timer);
		if (this.wakeResolve) this.wakeResolve();
	}

	// Poll now (after an action, so its first states show at once).
	nudge() {
		if (this.wakeResolve) this.wakeResolve();
	}

	sleep(ms) {
		return new Promise((resolve) => {
			this.wakeResolve = () => {
				clearTimeout(this.timer);
				this.wakeResolve = null;
				resolve();
			};
			this.timer = setTimeout(() => this.wakeResolve && this.wakeResolve(), ms);
		});
	}

	apply(ev) {
		if (!ev || typeof ev.seq !== 'number' || ev.seq <= this.seq) return false;
		this.seq = ev.seq;
		this.onEvent(ev);
		return true;
	}

	// One catch-up: page through events after this.seq until none are left.
	async poll() {
		this.polling = true;
		try {
			for (;;) {
				const r = await get(`/v1/repos/${seg(this.repo)}/events?after=${this.seq}&limit=${PAGE}`);
				const events = (r.data && r.data.events) || [];
				for (const ev of events) this.apply(ev);
				if (events.length) this.onBatchEnd();
				if (events.length < PAGE) break;
			}
		} finally {
			this.polling = false;
			const held = this.held;
			this.held = [];
			let any = false;
			for (const ev of held) any = this.apply(ev) || any;
			if (any) this.onBatchEnd();
		}
	}

	async loop() {
		while (!this.stopped) {
			try {
				await this.poll();
				if (this.failures > 0) {
					// Back after a failure: what happened meanwhile may not all be
					// in the feed we can still page (or the server was restored):
					// read the whole state again, and go on from its seq.
					this.failures = 0;
					this.onStatus('resync', 'Reconnected; reloading the state…');
					const seq = await this.onResync();
					if (this.stopped) return;
					if (typeof seq === 'number') this.seq = Math.max(this.seq, seq);
				}
				this.maybeOpenStream();
				this.reportLive();
				const wait = this.streamOpen ? this.streamSafetyMs : this.busy() ? this.fastMs : this.slowMs;
				await this.sleep(wait);
			} catch (e) {
				if (this.stopped) return;
				if (e instanceof ApiError && e.status === 401) {
					this.stop();
					return;
				}
				this.failures += 1;
				this.closeStream();
				const delay = Math.min(1000 * 2 ** Math.min(this.failures - 1, 4), 10000);
				const why = e instanceof ApiError ? e.message : String(e);
				this.onStatus('down', `Connection lost (${why}); retrying in ${Math.round(delay / 1000)} s`);
				await this.sleep(delay);
			}
		}
	}

	reportLive() {
		if (this.streamOpen) this.onStatus('stream', 'Live: following the event stream');
		else this.onStatus('poll', 'Live: polling the event feed');
	}

	maybeOpenStream() {
		if (this.es || this.stopped || typeof EventSource === 'undefined') return;
		if (Date.now() < this.streamRetryAt) return;
		let es;
		try {
			es = new EventSource(streamUrl(this.repo, this.seq));
		} catch {
			this.streamRetryAt = Date.now() + 60000;
			return;
		}
		this.es = es;
		let opened = false;
		const onData = (msg) => {
			let ev;
			try {
				ev = JSON.parse(msg.data);
			} catch {
				return;
			}
			const seq = Number(msg.lastEventId);
			if (ev && typeof ev.type !== 'string' && msg.type !== 'message' && Number.isInteger(seq)) {
				// The stream named the event and sent only its object.
				ev = {seq, type: msg.type, id: ev.id !== undefined ? ev.id : ev.name, data: ev};
			}
			if (!ev || typeof ev.type !== 'string') {
				// A shape this page does not know: let the feed tell.
				this.nudge();
				return;
			}
			if (typeof ev.seq === 'string' && /^[0-9]+$/.test(ev.seq)) ev.seq = Number(ev.seq);
			if (typeof ev.seq !== 'number' && Number.isInteger(seq) && msg.lastEventId !== '') ev.seq = seq;
			if (typeof ev.seq !== 'number') {
				// No seq to place it by: fetch it (with its seq) from the feed.
				this.nudge();
				return;
			}
			if (this.polling) {
				this.held.push(ev);
				return;
			}
			if (this.apply(ev)) this.onBatchEnd();
		};
		es.onmessage = onData;
		for (const t of ['job.updated', 'task.updated', 'branch.updated', 'branch.removed', 'repo.updated'])
			es.addEventListener(t, onData);
		es.onopen = () => {
			opened = true;
			this.streamOpen = true;
			this.streamFailures = 0;
			this.reportLive();
			// Close the gap between the last poll and the subscription.
			this.nudge();
		};
		es.onerror = () => {
			// Whatever the browser would do next, resume from SQLite first:
			// close, poll, and open again a little later.
			this.closeStream();
			this.streamFailures += 1;
			// A stream that never opened is most likely absent (501) or
			// refused: try again in a minute, and poll meanwhile.
			const backoff = opened ? Math.min(1000 * 2 ** Math.min(this.streamFailures, 5), 30000) : 60000;
			this.streamRetryAt = Date.now() + backoff;
			this.reportLive();
			this.nudge();
		};
	}

	closeStream() {
		if (this.es) {
			this.es.onopen = this.es.onerror = this.es.onmessage = null;
			this.es.close();
		}
		this.es = null;
		this.streamOpen = false;
	}
}
