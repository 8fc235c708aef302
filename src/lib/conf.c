/*
 * conf.c - reads the `key = value` configuration file over built-in
 * defaults. The key table below is the single list of settings: its order
 * is the order doc/repoflow.conf documents them in.
 */
#include "conf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum conf_type { CONF_STR, CONF_INT, CONF_INT64 };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	int64_t min, max;
	const char *def; /* default, as text */
};

#define STR(f, d)                                                                                  \
	{                                                                                          \
		#f, CONF_STR, offsetof(struct conf, f), 0, 0, d                                    \
	}
#define INT(f, lo, hi, d)                                                                          \
	{                                                                                          \
		#f, CONF_INT, offsetof(struct conf, f), lo, hi, d                                  \
	}
#define INT64(f, lo, hi, d)                                                                        \
	{                                                                                          \
		#f, CONF_INT64, offsetof(struct conf, f), lo, hi, d                                \
	}

static const struct conf_key conf_keys[] = {
	STR(database, "/var/lib/repoflow/repoflow.db"),
	STR(mirror_dir, "/var/lib/repoflow/repos"),
	STR(api_socket, "/run/repoflow/api.sock"),
	STR(wake_socket, "/run/repoflow/wake.sock"),
	INT(api_threads, 1, 256, "16"),
	INT64(body_limit, 1024, 64 * 1024 * 1024, "65536"),
	INT(worker_threads, 1, 64, "4"),
	INT(idle_exit_s, 1, 86400, "30"),
	INT(lease_s, 3, 86400, "60"),
	INT(max_attempts, 1, 100, "5"),
	INT64(retry_base_ms, 1, 86400000, "2000"),
	INT64(retry_max_ms, 1, 86400000, "300000"),
	INT(busy_timeout_ms, 0, 600000, "5000"),
	INT(watchdog_s, 0, 3600, "0"),
	STR(committer_name, "repoflow"),
	STR(committer_email, "repoflow@localhost"),
	STR(credentials_dir, SYSCONFDIR "/repoflow/credentials"),
	INT(idempotency_ttl_s, 1, 30 * 86400, "86400"),
	INT(branch_fresh_s, 0, 86400, "300"),
	INT(event_keep_days, 1, 3650, "7"),
	STR(events_publish_socket, ""),
};

static int conf_set(struct conf *c, const struct conf_key *k, const char *value)
{
	char *base = (char *)c + k->offset;
	int64_t v;
	int r;

	switch (k->type) {
	case CONF_STR: {
		char *s = strdup(value);
		if (s == NULL)
			return -ENOMEM;
		free(*(char **)base);
		*(char **)base = s;
		return 0;
	}
	case CONF_INT:
	case CONF_INT64:
		r = parse_int64(value, k->min, k->max, &v);
		if (r < 0)
			return r;
		if (k->type == CONF_INT)
			*(int *)base = (int)v;
		else
			*(int64_t *)base = v;
		return 0;
	}
	return -EINVAL;
}

void conf_init(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++)
		if (conf_set(c, &conf_keys[i], conf_keys[i].def) < 0)
			abort(); /* a default that does not parse is a bug */
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int conf_load(struct conf *c, const char *path, bool optional, struct err *e)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	int lineno = 0, r = 0;

	if (f == NULL) {
		if (errno == ENOENT && optional)
			return 0;
		return err_set(e, -errno, "config", "cannot open %s: %s", path, strerror(errno));
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *key, *value, *eq;
		const struct conf_key *k = NULL;

		lineno++;
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			r = err_set(e, -EINVAL, "config", "%s:%d: expected key = value", path,
				    lineno);
			break;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++)
			if (strcmp(conf_keys[i].name, key) == 0)
				k = &conf_keys[i];
		if (k == NULL) {
			r = err_set(e, -EINVAL, "config", "%s:%d: unknown key '%s'", path, lineno,
				    key);
			break;
		}
		r = conf_set(c, k, value);
		if (r < 0) {
			err_set(e, r, "config", "%s:%d: bad value for %s: '%s'", path, lineno, key,
				value);
			break;
		}
	}
	fclose(f);
	return r;
}

const char *conf_path(const char *explicit_path)
{
	const char *env;

	if (explicit_path != NULL)
		return explicit_path;
	env = getenv("REPOFLOW_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return CONF_DEFAULT_PATH;
}

void conf_release(struct conf *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++)
		if (conf_keys[i].type == CONF_STR) {
			char **p = (char **)((char *)c + conf_keys[i].offset);
			free(*p);
			*p = NULL;
		}
}
