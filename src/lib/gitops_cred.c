/*
 * gitops_cred.c - the credentials the worker offers a remote: an https
 * token or an ssh key, from files in credentials_dir (conf.h says how they
 * are named), per repo with a global fallback.
 *
 * The files are looked up once per job (gitops_cred_find) but read only
 * when the remote asks, inside libgit2's credentials callback, and the
 * token's bytes are wiped as soon as libgit2 has its copy. Each kind of
 * credential is offered once per connection: a remote that asks again has
 * refused it, and asking again would loop (libgit2 calls the callback for
 * as long as it returns credentials). The refusal is recorded in the
 * state so that the caller reports "auth_failed" (not retryable) whatever
 * code the transport returns. No message here ever contains a secret.
 *
 * Library code: it never logs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gitops_internal.h"

/* "<dir>/<name><suffix>" when that file exists, else NULL; -ENOMEM. */
static int find_one(const char *dir, const char *name, const char *suffix, char **ret)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%s%s", dir, name, suffix) < 0)
		return -ENOMEM;
	if (access(path, F_OK) == 0) {
		*ret = path;
		return 0;
	}
	free(path);
	return 0;
}

int gitops_cred_find(const char *dir, const char *repo, struct gitops_cred *ret)
{
	struct gitops_cred c = {NULL, NULL};
	int r = 0;

	if (dir != NULL && *dir != '\0') {
		r = find_one(dir, repo, ".token", &c.token_file);
		if (r == 0 && c.token_file == NULL)
			r = find_one(dir, "default", ".token", &c.token_file);
		if (r == 0)
			r = find_one(dir, repo, ".ssh", &c.ssh_key_file);
		if (r == 0 && c.ssh_key_file == NULL)
			r = find_one(dir, "default", ".ssh", &c.ssh_key_file);
	}
	if (r < 0) {
		gitops_cred_release(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void gitops_cred_release(struct gitops_cred *c)
{
	free(c->token_file);
	free(c->ssh_key_file);
	c->token_file = c->ssh_key_file = NULL;
}

/*
 * The token: the file's first line without surrounding white space, into
 * buf. -EINVAL for an empty token, -errno when the file cannot be read.
 */
static int read_token(const char *path, char *buf, size_t size)
{
	size_t len = 0, start = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			explicit_bzero(buf, size);
			return (int)n;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	while (buf[start] == ' ' || buf[start] == '\t')
		start++;
	if (start > 0)
		memmove(buf, buf + start, len - start + 1);
	if (buf[0] == '\0')
		return -EINVAL;
	return 0;
}

static int refuse(struct gitops_cred_state *cs, const char *why)
{
	cs->refused = true;
	git_error_set_str(GIT_ERROR_NET, why);
	return GIT_EAUTH;
}

int gitops_cred_acquire(git_credential **out, const char *url, const char *username_from_url,
			unsigned int allowed_types, void *payload)
{
	struct gitops_cred_state *cs = payload;
	const struct gitops_cred *c = cs->cred;
	const char *user = username_from_url;
	int r;

	(void)url;
	cs->asked++;
	if (cs->asked > 4)
		return refuse(cs, "the remote keeps asking for credentials");

	/* ssh asks for the user name alone first when the URL has none. */
	if ((allowed_types & GIT_CREDENTIAL_USERNAME) && c != NULL && c->ssh_key_file != NULL &&
	    !(cs->tried & GIT_CREDENTIAL_USERNAME)) {
		cs->tried |= GIT_CREDENTIAL_USERNAME;
		return git_credential_username_new(out, user != NULL ? user : "git");
	}
	if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) && c != NULL && c->ssh_key_file != NULL) {
		_cleanup_free_ char *pub = NULL;

		if (cs->tried & GIT_CREDENTIAL_SSH_KEY)
			return refuse(cs, "the remote refused the ssh key");
		cs->tried |= GIT_CREDENTIAL_SSH_KEY;
		if (asprintf(&pub, "%s.pub", c->ssh_key_file) < 0)
			return -1;
		return git_credential_ssh_key_new(out, user != NULL ? user : "git",
						  access(pub, R_OK) == 0 ? pub : NULL,
						  c->ssh_key_file, NULL);
	}
	if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && c != NULL &&
	    c->token_file != NULL) {
		char token[4096];

		if (cs->tried & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
			return refuse(cs, "the remote refused the token");
		cs->tried |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		r = read_token(c->token_file, token, sizeof(token));
		if (r < 0) {
			explicit_bzero(token, sizeof(token));
			return refuse(cs, r == -EINVAL ? "the token file is empty"
						       : "the token file cannot be read");
		}
		r = git_credential_userpass_plaintext_new(
		    out, user != NULL && *user != '\0' ? user : "x-access-token", token);
		explicit_bzero(token, sizeof(token));
		return r;
	}
	return refuse(cs, "the remote asks for credentials and none are configured for this "
			  "repo (see credentials_dir)");
}

void gitops_cred_callbacks(git_remote_callbacks *cb, struct gitops_cred_state *cs, const char *url)
{
	if (gitops_url_is_local(url))
		return;
	cb->credentials = gitops_cred_acquire;
	cb->payload = cs;
}

int gitops_map_remote_error(int gr, const struct gitops_cred_state *cs, const char *what,
			    const char *url, struct err *e)
{
	const git_error *ge = git_error_last();

	if (cs != NULL && cs->refused)
		return err_set(e, -EACCES, "auth_failed", "%s: authentication to %s failed: %s",
			       what, url,
			       ge != NULL && ge->message != NULL ? ge->message : "refused");
	return gitops_map_error(gr, true, what, url, e);
}
