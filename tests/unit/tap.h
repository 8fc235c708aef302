/*
 * tap.h - a tiny TAP producer for the C unit tests. Each test program
 * prints "1..N" at the end (plan at end is valid TAP) and exits non-zero
 * when anything failed.
 */
#ifndef REPOFLOW_TAP_H
#define REPOFLOW_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *what)
{
	tap_n++;
	if (cond) {
		printf("ok %d - %s\n", tap_n, what);
	} else {
		tap_failed++;
		printf("not ok %d - %s\n#   at %s:%d\n", tap_n, what, file, line);
	}
	fflush(stdout);
	return cond;
}
#define ok(cond, what) tap_ok(!!(cond), __FILE__, __LINE__, (what))
#define is_int(got, want, what)                                                                    \
	do {                                                                                       \
		long long _g = (long long)(got), _w = (long long)(want);                           \
		if (!ok(_g == _w, what))                                                           \
			printf("#   got %lld, want %lld\n", _g, _w);                                   \
	} while (0)
#define is_str(got, want, what)                                                                    \
	do {                                                                                       \
		const char *_g = (got), *_w = (want);                                              \
		if (!ok(_g != NULL && _w != NULL ? strcmp(_g, _w) == 0 : _g == _w, what))          \
			printf("#   got '%s', want '%s'\n", _g ? _g : "(null)", _w ? _w : "(null)"); \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed == 0 ? 0 : 1;
}

#endif
