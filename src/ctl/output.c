/*
 * output.c - how repoflowctl speaks: every error line ("repoflowctl:
 * <sentence>", with the detail the library gave), usage errors, JSON
 * documents, aligned tables and detail views, and the two transaction
 * helpers that report their own failures. Keeping all of it here means a
 * verb handler decides only *what* to say, never how it looks.
 */
#include "ctl.h"

#include <stdarg.h>
#include <string.h>

static void verror(const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
}

void ctl_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_fail(const struct err *e, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	if (r == -EBUSY)
		fputs(": the database stayed busy past busy_timeout_ms; try again", stderr);
	else if (e != NULL && e->msg[0] != '\0')
		fprintf(stderr, ": %s", e->msg);
	else if (r < 0)
		fprintf(stderr, ": %s", strerror(-r));
	fputc('\n', stderr);
	return CTL_FAILURE;
}

void ctl_print_try(const struct verb *v)
{
	if (v == NULL)
		fputs("Try '" PROG " --help'.\n", stderr);
	else if (v->sub == NULL)
		fprintf(stderr, "Try '" PROG " %s --help'.\n", v->name);
	else
		fprintf(stderr, "Try '" PROG " %s %s --help'.\n", v->name, v->sub);
}

int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c->verb != NULL)
		fprintf(stderr, "usage: " PROG " %s\n", c->verb->usage);
	ctl_print_try(c->verb);
	return CTL_USAGE;
}

int ctl_print_json(struct json_object *o)
{
	const char *s;

	if (o == NULL)
		return ctl_fail(NULL, -ENOMEM, "cannot build the JSON output");
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL) {
		json_object_put(o);
		return ctl_fail(NULL, -ENOMEM, "cannot build the JSON output");
	}
	puts(s);
	json_object_put(o);
	return CTL_OK;
}

struct json_object *ctl_json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (o == NULL || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		json_object_put(o);
		return NULL;
	}
	return o;
}

const char *ctl_time(int64_t ms, char buf[static RFC3339_LEN])
{
	return ms > 0 ? ms_to_rfc3339(ms, buf) : "-";
}

const char *ctl_str(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

void ctl_field(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-14s", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

int ctl_parse_id(const struct ctl *c, const char *s, int64_t *ret)
{
	if (parse_int64(s, 1, INT64_MAX, ret) < 0)
		return ctl_usage_error(c, "'%s' is not a job id (a positive integer)", s);
	return CTL_OK;
}

int ctl_begin(struct ctl *c)
{
	struct err e = {0};
	int r;

	r = store_begin(c->store, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot start a transaction");
	return CTL_OK;
}

int ctl_commit(struct ctl *c)
{
	struct err e = {0};
	int r;

	r = store_commit(c->store, &e);
	if (r < 0) {
		store_rollback(c->store);
		return ctl_fail(&e, r, "cannot commit");
	}
	return CTL_OK;
}

/* --- aligned tables -------------------------------------------------------- */

void table_init(struct table *t, size_t ncol)
{
	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
}

static bool table_grow(struct table *t)
{
	size_t cap = t->cap == 0 ? 16 : t->cap * 2;
	char **cells;

	cells = reallocarray(t->cells, cap * t->ncol, sizeof(*cells));
	if (cells == NULL)
		return false;
	t->cells = cells;
	t->cap = cap;
	return true;
}

void table_add(struct table *t, ...)
{
	char **row;
	va_list ap;

	if (t->failed)
		return;
	if (t->nrow == t->cap && !table_grow(t)) {
		t->failed = true;
		return;
	}
	/* The row always counts, so table_release frees whatever was copied. */
	row = t->cells + t->nrow++ * t->ncol;
	va_start(ap, t);
	for (size_t i = 0; i < t->ncol; i++) {
		const char *s = va_arg(ap, const char *);

		row[i] = strdup(s != NULL ? s : "-");
		if (row[i] == NULL)
			t->failed = true;
	}
	va_end(ap);
}

int table_print(const struct table *t)
{
	_cleanup_free_ size_t *width = NULL;

	if (t->failed)
		return ctl_fail(NULL, -ENOMEM, "cannot build the output");
	width = calloc(t->ncol, sizeof(*width));
	if (width == NULL)
		return ctl_fail(NULL, -ENOMEM, "cannot build the output");
	for (size_t r = 0; r < t->nrow; r++)
		for (size_t i = 0; i < t->ncol; i++) {
			size_t n = strlen(t->cells[r * t->ncol + i]);

			if (n > width[i])
				width[i] = n;
		}
	for (size_t r = 0; r < t->nrow; r++) {
		for (size_t i = 0; i + 1 < t->ncol; i++)
			printf("%-*s  ", (int)width[i], t->cells[r * t->ncol + i]);
		printf("%s\n", t->cells[r * t->ncol + t->ncol - 1]);
	}
	return CTL_OK;
}

void table_release(struct table *t)
{
	for (size_t i = 0; i < t->nrow * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
