/* test-util.c - clocks, RFC 3339, buffers, integer parsing, the config file. */
#include <stdio.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"
#include "util.h"

int main(void)
{
	char buf[RFC3339_LEN];
	struct buf b = BUF_INIT;
	int64_t v = 0;
	struct conf c;
	struct err e = {{0}, {0}};
	char path[] = "/tmp/repoflow-conf-XXXXXX";
	int fd;
	FILE *f;

	is_str(ms_to_rfc3339(0, buf), "1970-01-01T00:00:00.000Z", "epoch");
	is_str(ms_to_rfc3339(1795774530123LL, buf), "2026-11-27T10:15:30.123Z", "a time with ms");
	ok(now_ms() > 1700000000000LL, "now_ms is a wall clock in ms");

	ok(buf_printf(&b, "%d-%s", 42, "x") == 0 && strcmp(b.data, "42-x") == 0, "buf_printf");
	for (int i = 0; i < 1000; i++)
		buf_puts(&b, "abcdefgh");
	is_int(b.len, 4 + 8000, "buf grows");
	buf_release(&b);

	is_int(parse_int64("123", 0, 1000, &v), 0, "parse ok");
	is_int(v, 123, "parse value");
	is_int(parse_int64("12x", 0, 1000, &v), -EINVAL, "parse trailing junk");
	is_int(parse_int64("", 0, 1000, &v), -EINVAL, "parse empty");
	is_int(parse_int64("2000", 0, 1000, &v), -ERANGE, "parse out of range");
	is_int(parse_int64(" 1", 0, 1000, &v), -EINVAL, "parse leading space");

	conf_init(&c);
	is_int(c.idle_exit_s, 30, "default idle_exit_s");
	is_int(c.body_limit, 65536, "default body_limit");
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fputs("# comment\n\ndatabase = /tmp/x.db\n  worker_threads=7  \n", f);
	fclose(f);
	is_int(conf_load(&c, path, false, &e), 0, "load a good file");
	is_str(c.database, "/tmp/x.db", "string key read");
	is_int(c.worker_threads, 7, "int key read, spaces trimmed");
	f = fopen(path, "w");
	fputs("nonsense_key = 1\n", f);
	fclose(f);
	ok(conf_load(&c, path, false, &e) == -EINVAL && strstr(e.msg, "unknown key") != NULL,
	   "unknown key is an error naming it");
	f = fopen(path, "w");
	fputs("worker_threads = many\n", f);
	fclose(f);
	ok(conf_load(&c, path, false, &e) < 0 && strstr(e.msg, ":1:") != NULL,
	   "bad value names the line");
	unlink(path);
	is_int(conf_load(&c, path, true, &e), 0, "missing optional file is fine");
	ok(conf_load(&c, path, false, &e) == -ENOENT, "missing required file is an error");
	conf_release(&c);
	return tap_done();
}
