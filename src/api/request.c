/*
 * request.c - the per-request context: reading the CGI parameters, the
 * query string and a bounded body; building the response in memory and
 * writing it in one piece; problem+json (RFC 9457) for every error.
 *
 * Untrusted input is held to limits here, before any handler sees it: the
 * body to conf->body_limit (a larger CONTENT_LENGTH is refused without
 * reading it), JSON to strict syntax and valid UTF-8 with no NUL byte, and
 * every member of a JSON object to the field table of its endpoint.
 */
#include "request.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/*
 * How much of an unread body request_finish() discards before it gives
 * up. Reading what the web server sends lets it see a clean exchange (a
 * 413 instead of a broken pipe); past this bound a client is wasting
 * everybody's time and the connection is simply closed.
 */
#define REQUEST_DRAIN_MAX (16 * 1024 * 1024)

static const char *param_or_null(const struct request_io *io, const char *name)
{
	const char *v = io->param(io->cookie, name);

	/* nginx passes absent headers such as CONTENT_TYPE as empty strings. */
	return v != NULL && *v != '\0' ? v : NULL;
}

int request_init(struct request *r, const struct conf *conf, struct store *store,
		 const struct request_io *io)
{
	const char *uri, *q, *cl;
	size_t plen;

	memset(r, 0, sizeof(*r));
	r->conf = conf;
	r->store = store;
	r->io = io;
	r->content_length = -1;

	r->method = param_or_null(io, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";
	r->authorization = param_or_null(io, "HTTP_AUTHORIZATION");
	r->content_type = param_or_null(io, "CONTENT_TYPE");
	r->if_none_match = param_or_null(io, "HTTP_IF_NONE_MATCH");
	/* An empty Idempotency-Key is still a key (and is rejected as invalid). */
	r->idempotency_key = io->param(io->cookie, "HTTP_IDEMPOTENCY_KEY");

	/* REQUEST_URI is the path as the client sent it, before any rewriting. */
	uri = param_or_null(io, "REQUEST_URI");
	if (uri == NULL)
		uri = param_or_null(io, "DOCUMENT_URI");
	if (uri == NULL)
		uri = "/";
	q = strchr(uri, '?');
	plen = q != NULL ? (size_t)(q - uri) : strlen(uri);
	r->path = strndup(uri, plen);
	if (q != NULL)
		r->query = strdup(q + 1);
	else
		r->query = strdup((q = param_or_null(io, "QUERY_STRING")) != NULL ? q : "");
	if (r->path == NULL || r->query == NULL)
		return -ENOMEM;

	cl = param_or_null(io, "CONTENT_LENGTH");
	if (cl != NULL && parse_int64(cl, 0, INT64_MAX, &r->content_length) < 0) {
		r->content_length = -1;
		r->body_read = true; /* nothing can be trusted about this body */
		return respond_problem(r, 400, "malformed_request", NULL,
				       "CONTENT_LENGTH is not a number.");
	}
	return 0;
}

void request_release(struct request *r)
{
	for (size_t i = 0; i < r->nparams; i++) {
		free(r->params[i].name);
		free(r->params[i].value);
	}
	free(r->params);
	free(r->path);
	free(r->query);
	token_release(&r->token);
	repo_release(&r->repo);
	buf_release(&r->body);
	buf_release(&r->headers);
	buf_release(&r->out);
	memset(r, 0, sizeof(*r));
}

/* --- query strings ------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A decoded NUL would cut the string short wherever it goes next, so it is
 * refused like a malformed escape.
 */
int url_decode(const char *s, size_t len, bool plus, char **ret)
{
	char *out = malloc(len + 1), *o = out;

	if (out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len) {
				free(out);
				return -EINVAL;
			}
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return -EINVAL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*ret = out;
	return 0;
}

int request_parse_query(struct request *r)
{
	const char *p = r->query;

	if (r->query_parsed)
		return 0;
	r->query_parsed = true;
	while (*p != '\0') {
		size_t len = strcspn(p, "&"), klen;
		const char *eq = memchr(p, '=', len);
		struct query_param *np = NULL;
		char *name = NULL, *value = NULL;
		int ret;

		if (len == 0) {
			p++;
			continue;
		}
		klen = eq != NULL ? (size_t)(eq - p) : len;
		ret = url_decode(p, klen, true, &name);
		if (ret == 0)
			ret = eq != NULL ? url_decode(eq + 1, len - klen - 1, true, &value)
					 : url_decode("", 0, true, &value);
		if (ret == 0 && (np = realloc(r->params, (r->nparams + 1) * sizeof(*np))) == NULL)
			ret = -ENOMEM;
		if (ret < 0) {
			free(name);
			free(value);
			return ret;
		}
		r->params = np;
		r->params[r->nparams].name = name;
		r->params[r->nparams].value = value;
		r->nparams++;
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

int query_words_mask(const char *list, int (*from_name)(const char *), unsigned *ret)
{
	unsigned mask = 0;
	const char *p = list;

	for (;;) {
		size_t len = strcspn(p, ",");
		char word[64];
		int v;

		if (len == 0 || len >= sizeof(word))
			return -EINVAL;
		memcpy(word, p, len);
		word[len] = '\0';
		v = from_name(word);
		if (v < 0)
			return -EINVAL;
		mask |= 1u << v;
		p += len;
		if (*p == '\0')
			break;
		p++;
	}
	*ret = mask;
	return 0;
}

int query_mask_words(struct buf *b, unsigned mask, const char *(*name)(int), int max)
{
	bool first = true;
	int ret = 0;

	for (int i = 0; i < max; i++)
		if (mask & (1u << i)) {
			ret |= buf_printf(b, "%s%s", first ? "" : ",", name(i));
			first = false;
		}
	return ret;
}

bool request_etag_matches(const char *header, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = header;

	while (*p != '\0') {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == elen && strncmp(p, etag, len) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

const char *request_query(const struct request *r, const char *name)
{
	for (size_t i = r->nparams; i > 0; i--)
		if (strcmp(r->params[i - 1].name, name) == 0)
			return r->params[i - 1].value;
	return NULL;
}

void request_query_int64(const struct request *r, const char *name, int64_t min, int64_t max,
			 int64_t def, struct json_object *errors, int64_t *ret)
{
	const char *v = request_query(r, name);

	*ret = def;
	if (v != NULL && parse_int64(v, min, max, ret) < 0) {
		*ret = def;
		problem_error_add(errors, name, "must be an integer from %lld to %lld",
				  (long long)min, (long long)max);
	}
}

/* --- the body ------------------------------------------------------------ */

int request_read_body(struct request *r)
{
	int64_t limit = r->conf->body_limit, want;
	char chunk[16384];

	if (r->body_read)
		return r->responded && r->status >= 400 ? -EIO : 0;
	r->body_read = true;
	if (r->content_length > limit) {
		respond_problem(r, 413, "body_too_large", NULL,
				"The request body is %lld bytes; the limit is %lld.",
				(long long)r->content_length, (long long)limit);
		return -EMSGSIZE;
	}
	/* Without a length, read one byte past the limit to know it was exceeded. */
	if (r->content_length >= 0)
		want = r->content_length;
	else
		want = r->io->body_has_eof ? limit + 1 : 0;

	while ((int64_t)r->body.len < want) {
		size_t n = sizeof(chunk);
		ssize_t got;

		if ((int64_t)n > want - (int64_t)r->body.len)
			n = (size_t)(want - (int64_t)r->body.len);
		got = r->io->read(r->io->cookie, chunk, n);
		if (got < 0) {
			respond_problem(r, 400, "malformed_request", NULL,
					"The request body could not be read.");
			return (int)got;
		}
		if (got == 0)
			break;
		r->body_consumed += (uint64_t)got;
		if (buf_append(&r->body, chunk, (size_t)got) < 0) {
			respond_errno(r, -ENOMEM, NULL);
			return -ENOMEM;
		}
	}
	if ((int64_t)r->body.len > limit) {
		respond_problem(r, 413, "body_too_large", NULL,
				"The request body is over the limit of %lld bytes.",
				(long long)limit);
		return -EMSGSIZE;
	}
	if (r->content_length >= 0 && (int64_t)r->body.len < r->content_length) {
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body ended after %zu of %lld bytes.", r->body.len,
				(long long)r->content_length);
		return -EPIPE;
	}
	return 0;
}

bool request_content_is_json(const struct request *r)
{
	static const char want[] = "application/json";
	const char *ct = r->content_type;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * A strict RFC 8259 syntax check, run before json-c parses the body:
 * json-c, even with JSON_TOKENER_STRICT, accepts single-quoted member
 * names, NaN and Infinity, and raw control characters inside strings, and
 * "body is not JSON" must mean exactly that. (UTF-8 validity is left to
 * json-c's JSON_TOKENER_VALIDATE_UTF8.) Nesting is limited to the depth
 * json-c allows, so whatever passes here json-c can parse.
 */
struct json_scan {
	const unsigned char *p, *end;
	int depth;
};

static bool scan_value(struct json_scan *s);

static void scan_ws(struct json_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool scan_char(struct json_scan *s, unsigned char c)
{
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

static bool scan_digits(struct json_scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool scan_string(struct json_scan *s)
{
	if (!scan_char(s, '"'))
		return false;
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		s->p++;
		if (c != '\\')
			continue;
		if (s->p >= s->end)
			return false;
		c = *s->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, s->p++)
				if (s->p >= s->end || hexval((char)*s->p) < 0)
					return false;
		} else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
			return false;
		}
	}
	return false;
}

static bool scan_number(struct json_scan *s)
{
	scan_char(s, '-');
	if (!scan_char(s, '0') &&
	    !(s->p < s->end && *s->p >= '1' && *s->p <= '9' && scan_digits(s)))
		return false;
	if (scan_char(s, '.') && !scan_digits(s))
		return false;
	if (scan_char(s, 'e') || scan_char(s, 'E')) {
		if (!scan_char(s, '+'))
			scan_char(s, '-');
		if (!scan_digits(s))
			return false;
	}
	return true;
}

static bool scan_word(struct json_scan *s, const char *word)
{
	size_t len = strlen(word);

	if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
		return false;
	s->p += len;
	return true;
}

/* An object or an array: open, members separated by commas, close. */
static bool scan_container(struct json_scan *s, unsigned char open, unsigned char close)
{
	bool ok = true;

	s->p++; /* open */
	if (++s->depth > JSON_TOKENER_DEFAULT_DEPTH)
		return false;
	scan_ws(s);
	if (scan_char(s, close)) {
		s->depth--;
		return true;
	}
	for (;;) {
		scan_ws(s);
		if (open == '{') {
			ok = scan_string(s);
			scan_ws(s);
			ok = ok && scan_char(s, ':');
		}
		ok = ok && scan_value(s);
		scan_ws(s);
		if (!ok)
			return false;
		if (scan_char(s, close))
			break;
		if (!scan_char(s, ','))
			return false;
	}
	s->depth--;
	return true;
}

static bool scan_value(struct json_scan *s)
{
	scan_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
		return scan_container(s, '{', '}');
	case '[':
		return scan_container(s, '[', ']');
	case '"':
		return scan_string(s);
	case 't':
		return scan_word(s, "true");
	case 'f':
		return scan_word(s, "false");
	case 'n':
		return scan_word(s, "null");
	default:
		return scan_number(s);
	}
}

/* 0 when [text, text+len) is one JSON value with optional whitespace around it; else -EINVAL with
 * the offset of the first bad byte. */
static int json_syntax_check(const char *text, size_t len, size_t *ret_offset)
{
	struct json_scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
	bool ok = scan_value(&s);

	scan_ws(&s);
	if (ok && s.p == s.end)
		return 0;
	*ret_offset = (size_t)(s.p - (const unsigned char *)text);
	return -EINVAL;
}

int request_json_body(struct request *r, struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;
	int ret_read;

	/*
	 * The media type is checked before the body is read: a client that
	 * sends the wrong type learns that first, whatever the body holds.
	 */
	if (!request_content_is_json(r)) {
		respond_problem(r, 415, "unsupported_media_type", NULL,
				"The body must be application/json.");
		return -EMEDIUMTYPE;
	}
	ret_read = request_read_body(r);
	if (ret_read < 0)
		return ret_read;
	if (r->body.len == 0) {
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body is empty; a JSON object is expected.");
		return -EINVAL;
	}
	if (memchr(r->body.data, '\0', r->body.len) != NULL) {
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body contains a NUL byte.");
		return -EINVAL;
	}

	if (json_syntax_check(r->body.data, r->body.len, &end) < 0) {
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body is not valid JSON (at byte %zu).", end);
		return -EINVAL;
	}

	tok = json_tokener_new();
	if (tok == NULL) {
		respond_errno(r, -ENOMEM, NULL);
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, r->body.data, (int)r->body.len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (obj == NULL || jerr != json_tokener_success) {
		json_object_put(obj);
		if (jerr == json_tokener_continue) {
			respond_problem(r, 400, "malformed_request", NULL,
					"The request body is not valid JSON: it ends early.");
			return -EINVAL;
		}
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body is not valid JSON: %s at byte %zu.",
				json_tokener_error_desc(jerr), end);
		return -EINVAL;
	}
	for (size_t i = end; i < r->body.len; i++)
		if (!isspace((unsigned char)r->body.data[i])) {
			json_object_put(obj);
			respond_problem(r, 400, "malformed_request", NULL,
					"The request body has data after the JSON value "
					"(byte %zu).",
					i);
			return -EINVAL;
		}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		respond_problem(r, 400, "malformed_request", NULL,
				"The request body must be a JSON object.");
		return -EINVAL;
	}
	*ret = obj;
	return 0;
}

/* --- field tables -------------------------------------------------------- */

int fields_check(const struct field *table, size_t n, const char *prefix, struct json_object *obj,
		 void *form, struct json_object *errors)
{
	char name[300];
	int r = 0;

	struct json_object_iterator it = json_object_iter_begin(obj);
	struct json_object_iterator end = json_object_iter_end(obj);

	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		bool known = false;

		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(table[i].name, key) == 0;
		if (!known)
			r |= problem_error_add(errors, NULL, "%s%s", prefix, key);
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = NULL;

		snprintf(name, sizeof(name), "%s%s", prefix, table[i].name);
		if (!json_object_object_get_ex(obj, table[i].name, &v))
			v = NULL;
		table[i].check(form, name, v, errors);
	}
	return r < 0 ? -ENOMEM : 0;
}

bool field_string(struct json_object *value, const char *field, struct json_object *errors,
		  const char **ret, size_t *ret_len)
{
	if (!json_object_is_type(value, json_type_string)) {
		problem_error_add(errors, field, "must be a string");
		return false;
	}
	*ret = json_object_get_string(value);
	*ret_len = (size_t)json_object_get_string_len(value);
	return true;
}

/* --- the response -------------------------------------------------------- */

static const struct {
	int status;
	const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
};

static const char *status_reason(int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

/* Every problem type the API uses, with its title (the same for every instance, per RFC 9457). */
static const struct {
	const char *slug;
	const char *title;
} problem_types[] = {
    {"malformed_request", "The request is malformed"},
    {"unauthorized", "A valid bearer token is required"},
    {"forbidden", "This token may not do that"},
    {"not_found", "No such resource"},
    {"method_not_allowed", "Method not allowed on this resource"},
    {"repo_exists", "A repo with this name exists"},
    {"repo_busy", "The repo has a running job"},
    {"job_finished", "The job has already finished"},
    {"task_exists", "The branch already has a live task"},
    {"stream_unavailable", "The live event stream is not enabled"},
    {"body_too_large", "The request body is too large"},
    {"unsupported_media_type", "The request body has an unsupported media type"},
    {"validation_failed", "The request is not valid"},
    {"idempotency_key_reused", "The Idempotency-Key was used with a different request"},
    {"internal_error", "Internal server error"},
    {"not_implemented", "Not implemented yet"},
    {"database_busy", "The database is busy"},
    {"unavailable", "The service is unavailable"},
};

static const char *problem_title(const char *slug, int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(problem_types); i++)
		if (strcmp(problem_types[i].slug, slug) == 0)
			return problem_types[i].title;
	return status_reason(status);
}

int response_header(struct request *r, const char *name, const char *fmt, ...)
{
	char value[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value) || strpbrk(value, "\r\n") != NULL)
		return -EINVAL;
	return buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

int respond_json(struct request *r, int status, struct json_object *body)
{
	const char *text;
	size_t len;

	text = json_object_to_json_string_length(
	    body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text == NULL)
		return respond_errno(r, -ENOMEM, NULL);
	buf_reset(&r->out);
	if (buf_append(&r->out, text, len) < 0 || buf_puts(&r->out, "\n") < 0)
		return respond_errno(r, -ENOMEM, NULL);
	r->status = status;
	r->out_type = "application/json";
	r->responded = true;
	return 0;
}

int json_append(struct buf *b, struct json_object *o)
{
	const char *text;
	size_t len;

	text = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text == NULL)
		return -ENOMEM;
	return buf_append(b, text, len);
}

int page_write(struct request *r, const char *key, const void *arr, size_t n, int64_t limit,
	       page_item_fn item, struct json_object *next)
{
	size_t shown = n > (size_t)limit ? (size_t)limit : n;
	struct buf *b = &r->out;
	int ret;

	buf_reset(b);
	ret = buf_printf(b, "{\"%s\":[", key);
	for (size_t i = 0; i < shown && ret == 0; i++) {
		struct json_object *o = item(arr, i);

		if (o == NULL)
			return -ENOMEM;
		ret = i > 0 ? buf_puts(b, ",") : 0;
		if (ret == 0)
			ret = json_append(b, o);
		json_object_put(o);
	}
	if (ret == 0)
		ret = buf_puts(b, "],\"next\":");
	if (ret == 0)
		ret = next != NULL ? json_append(b, next) : buf_puts(b, "null");
	if (ret == 0)
		ret = buf_puts(b, "}");
	return ret;
}

int respond_json_out(struct request *r, int status)
{
	if (buf_puts(&r->out, "\n") < 0)
		return respond_errno(r, -ENOMEM, NULL);
	r->status = status;
	r->out_type = "application/json";
	r->responded = true;
	return 0;
}

int respond_empty(struct request *r, int status)
{
	buf_reset(&r->out);
	r->status = status;
	r->out_type = NULL;
	r->responded = true;
	return 0;
}

/*
 * A last resort that cannot fail: when even the problem object cannot be
 * built, the response is a fixed text.
 */
static int respond_oom(struct request *r)
{
	static const char body[] = "{\"type\":\"urn:repoflow:problem:internal_error\","
				   "\"title\":\"Internal server error\",\"status\":500}\n";

	buf_reset(&r->headers);
	buf_reset(&r->out);
	r->status = 500;
	r->out_type = NULL;
	r->responded = true;
	if (buf_append(&r->out, body, sizeof(body) - 1) == 0)
		r->out_type = "application/problem+json";
	return 0;
}

int respond_problem(struct request *r, int status, const char *slug, struct json_object *errors,
		    const char *fmt, ...)
{
	struct json_object *p = json_object_new_object();
	char detail[1024], type[96];
	const char *text;
	size_t len;
	va_list ap;
	int ret = 0;

	if (errors == NULL)
		errors = json_object_new_array();
	if (p == NULL || errors == NULL) {
		json_object_put(p);
		json_object_put(errors);
		return respond_oom(r);
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(type, sizeof(type), "urn:repoflow:problem:%s", slug);

	ret |= json_add(p, "type", json_object_new_string(type));
	ret |= json_add(p, "title", json_object_new_string(problem_title(slug, status)));
	ret |= json_add(p, "status", json_object_new_int(status));
	ret |= json_add(p, "detail", json_object_new_string(detail));
	ret |= json_add(p, "errors", errors);
	text = ret == 0 ? json_object_to_json_string_length(
			      p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
			: NULL;
	buf_reset(&r->headers);
	buf_reset(&r->out);
	if (text == NULL || buf_append(&r->out, text, len) < 0 || buf_puts(&r->out, "\n") < 0) {
		json_object_put(p);
		return respond_oom(r);
	}
	json_object_put(p);
	r->status = status;
	r->out_type = "application/problem+json";
	r->responded = true;
	return 0;
}

int respond_errno(struct request *r, int err, const struct err *e)
{
	const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg : strerror(-err);

	switch (err) {
	case -EBUSY:
		respond_problem(r, 503, "database_busy", NULL,
				"The database stayed busy past its timeout; try again.");
		response_header(r, "Retry-After", "1");
		return 0;
	case -ENOENT:
		return respond_problem(r, 404, "not_found", NULL, "%s.", msg);
	default:
		/* The caller sees no internals; the operator gets them once, here. */
		log_msg(LOG_ERR, "%s %s failed: %s", r->method, r->path != NULL ? r->path : "?",
			msg);
		return respond_problem(r, 500, "internal_error", NULL,
				       "The server could not complete the request.");
	}
}

struct json_object *problem_errors_new(void)
{
	return json_object_new_array();
}

/* A NULL field is an unknown member, named by the formatted text. */
int problem_error_add(struct json_object *errors, const char *field, const char *fmt, ...)
{
	struct json_object *item = json_object_new_object();
	char text[1024];
	va_list ap;
	int ret = 0;

	if (item == NULL)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (field == NULL) {
		ret |= json_add(item, "field", json_object_new_string(text));
		ret |= json_add(item, "message", json_object_new_string("unknown field"));
	} else {
		ret |= json_add(item, "field", json_object_new_string(field));
		ret |= json_add(item, "message", json_object_new_string(text));
	}
	if (ret != 0 || json_object_array_add(errors, item) < 0) {
		json_object_put(item);
		return -ENOMEM;
	}
	return 0;
}

/* --- finishing ----------------------------------------------------------- */

static void request_drain(struct request *r)
{
	char chunk[16384];
	uint64_t left;

	if (r->io->body_has_eof)
		left = REQUEST_DRAIN_MAX;
	else if (r->content_length > 0 && (uint64_t)r->content_length > r->body_consumed)
		left = (uint64_t)r->content_length - r->body_consumed;
	else
		left = 0;
	if (left > REQUEST_DRAIN_MAX)
		left = REQUEST_DRAIN_MAX;
	while (left > 0) {
		ssize_t got = r->io->read(r->io->cookie, chunk,
					  left < sizeof(chunk) ? (size_t)left : sizeof(chunk));

		if (got <= 0)
			break;
		left -= (uint64_t)got;
		r->body_consumed += (uint64_t)got;
	}
}

int request_finish(struct request *r)
{
	struct buf head = BUF_INIT;
	int ret;

	if (!r->responded)
		respond_errno(r, -EIO, NULL);
	request_drain(r);

	ret = buf_printf(&head, "Status: %d %s\r\n", r->status, status_reason(r->status));
	if (ret == 0 && r->out_type != NULL)
		ret = buf_printf(&head, "Content-Type: %s\r\nContent-Length: %zu\r\n", r->out_type,
				 r->out.len);
	if (ret == 0 && r->headers.len > 0)
		ret = buf_append(&head, r->headers.data, r->headers.len);
	if (ret == 0)
		ret = buf_puts(&head, "\r\n");
	/* HEAD gets the headers of GET and no body; the web server would drop it anyway. */
	if (ret == 0 && r->out.len > 0 && strcmp(r->method, "HEAD") != 0)
		ret = buf_append(&head, r->out.data, r->out.len);
	if (ret == 0)
		ret = r->io->write(r->io->cookie, head.data, head.len);
	buf_release(&head);
	return ret;
}
