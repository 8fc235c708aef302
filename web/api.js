// api.js - the one place that talks HTTP to repoflow's API (/v1/ on the
// same origin as the dashboard). Every call sends the bearer token; every
// error comes back as an ApiError carrying the problem+json body, so the
// view can show the server's own `detail`.

const TOKEN_KEY = 'repoflow.token';

export function getToken() {
	try {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	} catch {
		return '';
	}
}

export function setToken(token) {
	try {
		if (token) sessionStorage.setItem(TOKEN_KEY, token);
		else sessionStorage.removeItem(TOKEN_KEY);
	} catch {
		// Storage refused (private mode): the token lives for this page only.
	}
	memoryToken = token || '';
}

let memoryToken = '';
function token() {
	return getToken() || memoryToken;
}

// Called on every 401, whatever asked: the app then shows the token prompt.
let unauthorizedHandler = null;
export function onUnauthorized(fn) {
	unauthorizedHandler = fn;
}

export class ApiError extends Error {
	// status: the HTTP status (0 when the server could not be reached);
	// problem: the RFC 9457 body when there was one.
	constructor(status, problem, fallback) {
		const detail = problem && (problem.detail || problem.title);
		super(detail || fallback || `HTTP ${status}`);
		this.name = 'ApiError';
		this.status = status;
		this.problem = problem || null;
	}

	// The problem slug after urn:repoflow:problem:, or ''.
	get slug() {
		const t = this.problem && typeof this.problem.type === 'string' ? this.problem.type : '';
		return t.replace(/^urn:repoflow:problem:/, '');
	}

	// "field: message" lines of the problem's errors[].
	get fieldErrors() {
		const errs = this.problem && Array.isArray(this.problem.errors) ? this.problem.errors : [];
		return errs.map((e) => (e && e.field ? `${e.field}: ${e.message}` : String(e && e.message)));
	}

	get isNetwork() {
		return this.status === 0;
	}
}

// Percent-encode one path segment (a repo name or branch never contains
// '/' in a segment position, but be safe).
export function seg(s) {
	return encodeURIComponent(String(s));
}

// request(path, {method, body, accept, signal}) -> {status, data, text, headers}
// Throws ApiError on a network failure (status 0) or any status >= 400.
export async function request(path, opts = {}) {
	const {method = 'GET', body, accept = 'application/json', signal, timeoutMs = 30000} = opts;
	const headers = {Accept: accept};
	const tok = token();
	if (tok) headers.Authorization = `Bearer ${tok}`;
	const init = {method, headers, cache: 'no-store', credentials: 'omit'};
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), timeoutMs);
	if (signal) {
		if (signal.aborted) ctl.abort();
		else signal.addEventListener('abort', () => ctl.abort(), {once: true});
	}
	init.signal = ctl.signal;
	let res;
	try {
		res = await fetch(path, init);
	} catch (e) {
		clearTimeout(timer);
		if (signal && signal.aborted) throw e;
		throw new ApiError(0, null, 'Cannot reach the API');
	}
	let text = '';
	try {
		text = await res.text();
	} catch {
		clearTimeout(timer);
		throw new ApiError(0, null, 'The connection to the API broke');
	}
	clearTimeout(timer);
	const ct = res.headers.get('Content-Type') || '';
	let data = null;
	if (/json/.test(ct) && text) {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	if (res.status >= 400) {
		const err = new ApiError(res.status, data, `${res.status} ${res.statusText}`);
		if (res.status === 401 && unauthorizedHandler) unauthorizedHandler(err);
		throw err;
	}
	return {status: res.status, data, text, headers: res.headers};
}

export const get = (path, opts) => request(path, {...opts, method: 'GET'});
export const post = (path, body, opts) => request(path, {...opts, method: 'POST', body});

// The URL of the live event stream. EventSource cannot send headers, so
// the token travels as the access_token query parameter, which the stream
// endpoint accepts for this reason alone. Nothing else is sent: the stream
// starts at the next new event, and the feed (feed.js) reads what came
// before from events?after= each time the stream opens.
export function streamUrl(repo) {
	const q = new URLSearchParams({access_token: token()});
	return `/v1/repos/${seg(repo)}/events/stream?${q}`;
}
