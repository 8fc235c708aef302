/*
 * shell.h - for unit tests that build real repositories with the git CLI:
 * run a command in the test's directory, read the first line a command
 * prints, and resolve a revision. Header-only, like tap.h; the including
 * file fills `dir` (e.g. with mkdtemp) before the first call.
 */
#ifndef REPOFLOW_TEST_SHELL_H
#define REPOFLOW_TEST_SHELL_H

#include <git2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

/* Run a shell command built from fmt in dir; returns its exit status (output discarded). */
static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ( ", dir);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ) >/dev/null 2>&1");
	return system(cmd);
}

/* The first line a command run in dir prints, without its newline, into out; "" on failure. */
static inline const char *capture(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline const char *capture(char *out, size_t size, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	int n;

	out[0] = '\0';
	va_start(ap, fmt);
	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (p == NULL)
		return out;
	if (fgets(out, (int)size, p) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
	return out;
}

/* What `what` names in the repository gitdir (relative to dir); zero when nothing. */
static inline git_oid rev(const char *gitdir, const char *what)
{
	char hex[64];
	git_oid id;

	memset(&id, 0, sizeof(id));
	capture(hex, sizeof(hex), "git --git-dir=%s rev-parse --verify -q '%s'", gitdir, what);
	if (hex[0] != '\0')
		git_oid_fromstr(&id, hex);
	return id;
}

#endif
