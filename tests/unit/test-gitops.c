/*
 * test-gitops.c - gitops_mirror_sync against real bare remotes made with
 * the git CLI in a throwaway directory: the first sync creates the mirror,
 * later ones follow pushes and forced updates, prune deleted branches,
 * follow a changed URL, and a remote that cannot be read is reported as
 * -ENETUNREACH "remote_unreachable" (the worker retries those).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gitops.h"
#include "shell.h"
#include "tap.h"

static const struct gitops_head *find(const struct gitops_head *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0)
			return &h[i];
	return NULL;
}

/* Every listed head agrees with the remote and with the mirror's own ref. */
static void check_heads(const struct gitops_head *h, size_t n, const char *remote,
			const char *mirror, const char *what)
{
	char want[64], got[64], label[512];

	for (size_t i = 0; i < n; i++) {
		capture(want, sizeof(want), "git --git-dir=%s rev-parse refs/heads/%s", remote,
			h[i].name);
		capture(got, sizeof(got), "git --git-dir=%s rev-parse refs/heads/%s", mirror,
			h[i].name);
		snprintf(label, sizeof(label), "%s: %s remote_head matches the remote", what,
			 h[i].name);
		is_str(h[i].remote_head, want, label);
		snprintf(label, sizeof(label), "%s: %s head matches the mirror", what, h[i].name);
		is_str(h[i].head, got, label);
	}
}

static void test_sync(void)
{
	_cleanup_free_ struct gitops_head *h = NULL;
	char path[256], url[300], out[128];
	struct err e = {{0}, {0}};
	size_t n = 0;
	int r;

	ok(sh("git init -q --bare remote.git && git init -q -b main work && cd work && "
	      "echo a >a && git add a && git commit -q -m a && "
	      "git checkout -q -b feat-1 && echo b >b && git add b && git commit -q -m b && "
	      "git checkout -q -b feat-2 && echo c >c && git add c && git commit -q -m c && "
	      "git push -q ../remote.git main feat-1 feat-2") == 0,
	   "a remote with main, feat-1, feat-2");

	snprintf(path, sizeof(path), "%s/mirrors/demo.git", dir);
	snprintf(url, sizeof(url), "%s/remote.git", dir);
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, 0, "first sync clones the mirror");
	if (r < 0)
		printf("#   %s: %s\n", e.code, e.msg);
	is_int(n, 3, "three branches");
	if (n == 3) {
		is_str(h[0].name, "feat-1", "sorted by name (0)");
		is_str(h[1].name, "feat-2", "sorted by name (1)");
		is_str(h[2].name, "main", "sorted by name (2)");
	}
	check_heads(h, n, "remote.git", "mirrors/demo.git", "first sync");
	is_str(
	    capture(out, sizeof(out), "git --git-dir=mirrors/demo.git config remote.origin.fetch"),
	    "+refs/heads/*:refs/heads/*", "the mirror fetches every branch onto itself");
	free(TAKE_PTR(h));

	/* Delete a branch, force-push another, advance main. */
	ok(sh("git --git-dir=remote.git update-ref -d refs/heads/feat-2 && cd work && "
	      "git checkout -q feat-1 && git commit -q --amend -m b2 && "
	      "git checkout -q main && echo d >d && git add d && git commit -q -m d && "
	      "git push -q -f ../remote.git main feat-1") == 0,
	   "remote: feat-2 deleted, feat-1 rewritten, main advanced");
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, 0, "second sync");
	is_int(n, 2, "two branches left");
	ok(find(h, n, "feat-2") == NULL, "feat-2 is not listed");
	ok(sh("git --git-dir=mirrors/demo.git rev-parse --verify -q refs/heads/feat-2") != 0,
	   "feat-2 is pruned from the mirror");
	check_heads(h, n, "remote.git", "mirrors/demo.git", "after prune");
	free(TAKE_PTR(h));

	/* A remote that cannot be read is unreachable, and retryable. */
	ok(sh("mv remote.git remote-away.git") == 0, "the remote path goes away");
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, -ENETUNREACH, "a missing local remote is -ENETUNREACH");
	is_str(e.code, "remote_unreachable", "with code remote_unreachable");
	ok(e.msg[0] != '\0', "and a message");
	ok(h == NULL, "nothing is returned on failure");
	printf("#   %s\n", e.msg);

	snprintf(url, sizeof(url), "file://%s/remote.git", dir);
	memset(&e, 0, sizeof(e));
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, -ENETUNREACH, "a missing file:// remote is -ENETUNREACH");
	is_str(e.code, "remote_unreachable", "with code remote_unreachable");
	printf("#   %s\n", e.msg);

	ok(sh("mkdir remote.git") == 0, "an empty directory where the remote was");
	memset(&e, 0, sizeof(e));
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, -ENETUNREACH, "a directory that is not a repository is -ENETUNREACH");
	is_str(e.code, "remote_unreachable", "with code remote_unreachable");
	printf("#   %s\n", e.msg);

	/* The remote moves to another URL: origin follows it. */
	snprintf(url, sizeof(url), "file://%s/remote-away.git", dir);
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, 0, "sync from the new URL");
	is_int(n, 2, "still two branches");
	is_str(capture(out, sizeof(out), "git --git-dir=mirrors/demo.git config remote.origin.url"),
	       url, "origin points at the new URL");
	check_heads(h, n, "remote-away.git", "mirrors/demo.git", "after the URL changed");
	free(TAKE_PTR(h));

	/* An empty remote has no branches, and a sync prunes them all. */
	ok(sh("git init -q --bare empty.git") == 0, "an empty remote");
	snprintf(url, sizeof(url), "%s/empty.git", dir);
	r = gitops_mirror_sync(path, url, &h, &n, &e);
	is_int(r, 0, "sync from an empty remote");
	is_int(n, 0, "no branches");
	ok(sh("test -z \"$(git --git-dir=mirrors/demo.git for-each-ref refs/heads)\"") == 0,
	   "the mirror has no branches left");
}

int main(void)
{
	char rm[128];

	snprintf(dir, sizeof(dir), "/tmp/test-gitops.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* The git CLI must not read the machine's or the user's configuration. */
	setenv("HOME", dir, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.org", 1);

	ok(gitops_init() == 0, "gitops_init");
	test_sync();
	gitops_shutdown();

	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
