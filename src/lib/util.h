/*
 * util.h - small things every part of repoflow uses: ownership helpers in
 * the style of systemd's _cleanup_, the error-detail carrier, clock
 * readings in milliseconds and their RFC 3339 form, and a growable buffer.
 *
 * Conventions (see STYLE.md): functions return 0 (or a count) on success
 * and a negative errno on failure; a detailed message travels in an
 * optional `struct err *` passed last, filled right after the failing call.
 */
#ifndef REPOFLOW_UTIL_H
#define REPOFLOW_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Free-on-scope-exit. TAKE_PTR hands the pointer on and leaves NULL. */
#define _cleanup_(f) __attribute__((cleanup(f)))
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

void closep(int *fd);
#define _cleanup_close_ _cleanup_(closep)

/*
 * Error detail. `code` is a short machine word (a problem slug such as
 * "remote_unreachable"), `msg` a sentence for a person. Either may be empty.
 */
struct err {
	char code[48];
	char msg[512];
};

/* Fill `e` (if not NULL) and return `ret` (a negative errno), for `return err_set(...)`. */
int err_set(struct err *e, int ret, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Milliseconds since the epoch, wall clock; and a monotonic reading. */
int64_t now_ms(void);
int64_t mono_ms(void);

/* `2026-11-27T10:15:30.123Z` into buf (at least 25 bytes). Returns buf. */
#define RFC3339_LEN 25
char *ms_to_rfc3339(int64_t ms, char buf[static RFC3339_LEN]);

/* A growable, always NUL-terminated byte buffer. len excludes the NUL. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT {NULL, 0, 0}
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_release(struct buf *b);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Parse a whole decimal int64 in [min, max]; -EINVAL / -ERANGE. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Sleep for ms milliseconds (restarting on EINTR). */
void sleep_ms(int64_t ms);

#endif
