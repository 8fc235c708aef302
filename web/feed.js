// feed.js - follows one repo's event feed.
//
// The API's contract (doc/api.md, "Events"): SQLite is the record and the
// live stream a fast path. A client reads GET …/events?after=<the last
// seq it applied> every time the stream opens, then follows the stream,
// dropping any event at or below the last seq it applied; polling alone
// must stay a complete path. So this follower:
//
//   - always polls `events?after=` (quickly while there is no stream,
//     slowly as a safety net while there is one);
//   - opens the server-sent event stream (…/events/stream, via nginx
//     nchan) when the server has one. Each message's `data:` is one event
//     exactly as `events?after=` returns it, `seq` included; its `id:` is
//     nchan's message id, not a seq, and is not used here;
//   - on every `open` of the stream (the first and each reopen) reads
//     `events?after=` again with a request that starts after the open,
//     and holds the stream's events until that read is done: an event
//     committed before the subscription comes from SQLite, one committed
//     after it from the stream, and none is applied out of order;
//   - applies each event exactly once, in `seq` order (an event at or
//     below the last applied seq is dropped);
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
	//        onResync() -> Promise<seq>, busy() -> bool, fastMs, slowMs,
	//        streamSafetyMs}
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
		// Each `open` of the stream bumps opens; caughtUp is the opens value
		// at the start of the last complete read of events?after=. Stream
		// events wait in `held` until caughtUp === opens.
		this.opens = 0;
		this.caughtUp = 0;
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

	// Whether the stream's events must wait: while a read of the feed is in
	// flight (it applies what it finds first, in seq order), and after each
	// open of the stream until a read that started after it is done.
	get holding() {
		return this.polling || this.caughtUp !== this.opens;
	}

	// A stream opened whose catch-up read has not finished.
	get behind() {
		return this.caughtUp !== this.opens;
	}

	// Apply the stream events that waited for a catch-up, in seq order.
	releaseHeld() {
		if (this.holding || !this.held.length) return;
		const held = this.held.sort((a, b) => a.seq - b.seq);
		this.held = [];
		let any = false;
		for (const ev of held) any = this.apply(ev) || any;
		if (any) this.onBatchEnd();
	}

	// One catch-up: page through events after this.seq until none are left.
	async poll() {
		const opens = this.opens;
		this.polling = true;
		try {
			for (;;) {
				const r = await get(`/v1/repos/${seg(this.repo)}/events?after=${this.seq}&limit=${PAGE}`);
				if (this.stopped) return;
				const events = (r.data && r.data.events) || [];
				for (const ev of events) this.apply(ev);
				if (events.length) this.onBatchEnd();
				if (events.length < PAGE) break;
			}
			// Every event committed before the stream's open number `opens` is
			// applied now (this read started after that open).
			this.caughtUp = Math.max(this.caughtUp, opens);
		} finally {
			this.polling = false;
		}
		this.releaseHeld();
	}

	async loop() {
		while (!this.stopped) {
			try {
				await this.poll();
				if (this.stopped) return;
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
				// The stream (re)opened while that read was in flight: read again
				// at once, from a request that starts after the open.
				if (this.behind) continue;
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
		if (this.streamOpen && !this.behind) this.onStatus('stream', 'Live: following the event stream');
		else if (!this.streamOpen) this.onStatus('poll', 'Live: polling the event feed');
	}

	maybeOpenStream() {
		if (this.es || this.stopped || typeof EventSource === 'undefined') return;
		if (Date.now() < this.streamRetryAt) return;
		let es;
		try {
			es = new EventSource(streamUrl(this.repo));
		} catch {
			this.streamRetryAt = Date.now() + 60000;
			return;
		}
		this.es = es;
		let opened = false;
		// One message: `data:` is one event as events?after= has it, seq
		// included; messages have no `event:` name, so they come to
		// onmessage. (`lastEventId` is nchan's id, not a seq.)
		es.onmessage = (msg) => {
			let ev;
			try {
				ev = JSON.parse(msg.data);
			} catch {
				ev = null;
			}
			if (!ev || typeof ev.seq !== 'number' || typeof ev.type !== 'string') {
				// Not an event this page knows: the feed has it, if anything.
				this.nudge();
				return;
			}
			if (this.holding) {
				this.held.push(ev);
				return;
			}
			if (this.apply(ev)) this.onBatchEnd();
		};
		es.onopen = () => {
			// Resume from SQLite on every open: hold the stream until a read of
			// events?after= that starts now has been applied.
			opened = true;
			this.opens += 1;
			this.streamOpen = true;
			this.streamFailures = 0;
			this.nudge();
		};
		es.onerror = () => {
			// Whatever the browser would do next, resume from SQLite first:
			// close, poll, and open again a little later (that open reads the
			// feed again before following the stream).
			this.closeStream();
			this.streamFailures += 1;
			// A stream that never opened is most likely absent (503
			// stream_unavailable) or refused: try again in a minute, and poll
			// meanwhile.
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
		// What the closed stream held is in the feed: the next read gets it.
		this.held = [];
		this.caughtUp = this.opens;
	}
}
