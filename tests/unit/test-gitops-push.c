/*
 * test-gitops-push.c - the two steps of the job frame that change
 * something, against real repositories made with the git CLI:
 *
 *  - gitops_push_leased: every lease holds, so every ref is pushed and
 *    reported; one remote ref moved since the fetch, so nothing at all is
 *    pushed (-EAGAIN, "remote_moved"); a ref the server rejects is an error
 *    (-EREMOTEIO, "push_rejected") even though libgit2's push returned 0,
 *    both through the local transport (a held ref lock in the remote) and
 *    through the smart protocol (git daemon with an update hook declining
 *    one ref; skipped when git daemon cannot start); the temporary source
 *    refs never outlive the push;
 *  - gitops_refs_move: all refs move, or (a ref not at its expected
 *    value, a lock held) none does; deletes and creates work.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gitops.h"
#include "shell.h"
#include "tap.h"

static char mirror[256];

/* A new commit in the mirror on top of `parent` (a rev), not on any ref. */
static git_oid new_commit(const char *parent, const char *msg)
{
	char hex[64];
	git_oid id;

	memset(&id, 0, sizeof(id));
	capture(hex, sizeof(hex),
		"git --git-dir=mirrors/demo.git commit-tree -p %s -m '%s' %s^{tree}", parent, msg,
		parent);
	if (hex[0] != '\0')
		git_oid_fromstr(&id, hex);
	return id;
}

static bool same(const git_oid *a, const git_oid *b)
{
	return git_oid_equal(a, b);
}

/* Fetch into the mirror; the heads are the leases. */
static int fetch(const char *url, struct gitops_head **h, size_t *n)
{
	struct err e = {{0}, {0}};
	int r = gitops_mirror_fetch(mirror, url, NULL, h, n, &e);

	if (r < 0)
		printf("#   fetch: %s: %s\n", e.code, e.msg);
	return r;
}

static git_oid lease_of(const struct gitops_head *h, size_t n, const char *name)
{
	git_oid id;

	memset(&id, 0, sizeof(id));
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0)
			git_oid_fromstr(&id, h[i].remote_head);
	return id;
}

static bool no_tmp_refs(void)
{
	return sh("test -z \"$(git --git-dir=mirrors/demo.git for-each-ref refs/repoflow)\"") == 0;
}

static void test_push_local(void)
{
	_cleanup_free_ struct gitops_head *h = NULL;
	git_repository *repo = NULL;
	struct gitops_push_ref refs[2];
	char url[300];
	struct err e = {{0}, {0}};
	git_oid n1, n2, old1;
	size_t n = 0;
	int r;

	ok(sh("git init -q --bare remote.git && git init -q -b main work && cd work && "
	      "echo a >a && git add a && git commit -q -m a && "
	      "git checkout -q -b feat-1 && echo b >b && git add b && git commit -q -m b && "
	      "git checkout -q -b feat-2 && echo c >c && git add c && git commit -q -m c && "
	      "git push -q ../remote.git main feat-1 feat-2") == 0,
	   "a remote with main, feat-1, feat-2");
	snprintf(mirror, sizeof(mirror), "%s/mirrors/demo.git", dir);
	snprintf(url, sizeof(url), "file://%s/remote.git", dir);
	is_int(fetch(url, &h, &n), 0, "fetch into the mirror");
	is_int(gitops_mirror_open(mirror, &repo, &e), 0, "open the mirror");

	/* 1. Every lease holds. */
	old1 = rev("remote.git", "feat-1");
	n1 = new_commit("main", "rewritten feat-1");
	n2 = new_commit("main", "rewritten feat-2");
	memset(refs, 0, sizeof(refs));
	refs[0].branch = "feat-1";
	refs[0].lease = lease_of(h, n, "feat-1");
	refs[0].target = n1;
	refs[1].branch = "feat-2";
	refs[1].lease = lease_of(h, n, "feat-2");
	refs[1].target = n2;
	r = gitops_push_leased(repo, url, NULL, "refs/repoflow/push/1", refs, 2, &e);
	is_int(r, 0, "leases hold: the push succeeds");
	if (r < 0)
		printf("#   %s: %s\n", e.code, e.msg);
	ok(refs[0].pushed && refs[1].pushed, "both refs report success");
	git_oid g1 = rev("remote.git", "feat-1"), g2 = rev("remote.git", "feat-2");
	ok(same(&g1, &n1) && same(&g2, &n2), "the remote has the new values (forced)");
	g1 = rev("mirrors/demo.git", "refs/heads/feat-1");
	ok(same(&g1, &old1), "the push does not move the mirror's own refs");
	ok(no_tmp_refs(), "the temporary source refs are gone");

	/* 2. Someone pushes to feat-2 after our fetch: nothing is pushed. */
	free(TAKE_PTR(h));
	is_int(fetch(url, &h, &n), 0, "fetch again");
	ok(sh("cd work && git fetch -q ../remote.git feat-2 && git checkout -q -B feat-2 "
	      "FETCH_HEAD && echo d >d && git add d && git commit -q -m d && "
	      "git push -q ../remote.git feat-2") == 0,
	   "someone pushes to feat-2 after the fetch");
	git_oid moved = rev("remote.git", "feat-2");
	memset(refs, 0, sizeof(refs));
	refs[0].branch = "feat-1";
	refs[0].lease = lease_of(h, n, "feat-1");
	refs[0].target = new_commit("main", "again feat-1");
	refs[1].branch = "feat-2";
	refs[1].lease = lease_of(h, n, "feat-2");
	refs[1].target = new_commit("main", "again feat-2");
	memset(&e, 0, sizeof(e));
	r = gitops_push_leased(repo, url, NULL, "refs/repoflow/push/2", refs, 2, &e);
	is_int(r, -EAGAIN, "a moved remote ref refuses the push: -EAGAIN");
	is_str(e.code, "remote_moved", "code remote_moved");
	printf("#   %s\n", e.msg);
	g1 = rev("remote.git", "feat-1");
	g2 = rev("remote.git", "feat-2");
	ok(same(&g1, &n1), "feat-1 (whose lease held) was not pushed either");
	ok(same(&g2, &moved), "feat-2 keeps the other person's commit");
	ok(!refs[0].pushed && !refs[1].pushed, "no ref reports success");
	ok(no_tmp_refs(), "the temporary source refs are gone after a refusal");

	/*
	 * 3. The server cannot update one ref (its lock is held: another update is
	 * under way): libgit2 says 0, but the push failed, and as a race it is
	 * remote_moved (retryable). The ref that did go through is put back, so
	 * the failed push leaves the remote as it was.
	 */
	free(TAKE_PTR(h));
	is_int(fetch(url, &h, &n), 0, "fetch again");
	ok(sh("touch remote.git/refs/heads/feat-1.lock") == 0, "the remote's feat-1 is locked");
	memset(refs, 0, sizeof(refs));
	refs[0].branch = "feat-1";
	refs[0].lease = lease_of(h, n, "feat-1");
	refs[0].target = new_commit("main", "third feat-1");
	refs[1].branch = "feat-2";
	refs[1].lease = lease_of(h, n, "feat-2");
	refs[1].target = new_commit("main", "third feat-2");
	memset(&e, 0, sizeof(e));
	r = gitops_push_leased(repo, url, NULL, "refs/repoflow/push/3", refs, 2, &e);
	is_int(r, -EAGAIN, "a ref the server could not lock fails the push: -EAGAIN");
	is_str(e.code, "remote_moved", "code remote_moved (a race, retryable)");
	printf("#   %s\n", e.msg);
	ok(!refs[0].pushed && refs[0].status[0] != '\0', "feat-1 is rejected, with the reason");
	ok(!refs[1].pushed, "feat-2 went through and was put back");
	ok(strstr(e.msg, "put back") != NULL, "the error says the accepted ref was put back");
	g1 = rev("remote.git", "feat-1");
	ok(same(&g1, &n1), "the remote's feat-1 did not move");
	{
		git_oid back = rev("remote.git", "feat-2");

		ok(git_oid_equal(&back, &refs[1].lease),
		   "the remote's feat-2 is back at its lease");
	}
	ok(no_tmp_refs(), "the temporary source refs are gone after a rejection");
	ok(sh("rm -f remote.git/refs/heads/feat-1.lock") == 0, "unlock");

	git_repository_free(repo);
}

/* A free TCP port on 127.0.0.1, or 0. */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* The smart protocol: git daemon with receive-pack and an update hook declining feat-1. */
static void test_push_daemon(void)
{
	_cleanup_free_ struct gitops_head *h = NULL;
	git_repository *repo = NULL;
	struct gitops_push_ref refs[2];
	struct err e = {{0}, {0}};
	char url[300], pid[32];
	int port = free_port(), r;
	size_t n = 0;

	if (port == 0 ||
	    sh("git init -q --bare srv/smart.git && git -C srv/smart.git config "
	       "receive.denyNonFastForwards false && "
	       "cd work && git push -q ../srv/smart.git main feat-1 feat-2 && cd .. && "
	       "printf '#!/bin/sh\\ntest \"$1\" != refs/heads/feat-1 || "
	       "{ echo no feat-1 here >&2; exit 1; }\\n' >srv/smart.git/hooks/update && "
	       "chmod +x srv/smart.git/hooks/update && "
	       "git daemon --detach --pid-file=daemon.pid --listen=127.0.0.1 --port=%d "
	       "--base-path=%s/srv --export-all --enable=receive-pack --reuseaddr %s/srv",
	       port, dir, dir) != 0) {
		printf("ok %d # SKIP git daemon cannot start\n", ++tap_n);
		return;
	}
	/* Wait until it answers. */
	for (int i = 0; i < 50 && sh("git ls-remote git://127.0.0.1:%d/smart.git", port) != 0; i++)
		usleep(100000);
	snprintf(url, sizeof(url), "git://127.0.0.1:%d/smart.git", port);
	snprintf(mirror, sizeof(mirror), "%s/mirrors/smart.git", dir);
	is_int(fetch(url, &h, &n), 0, "git://: fetch into a mirror");
	is_int(gitops_mirror_open(mirror, &repo, &e), 0, "git://: open the mirror");

	memset(refs, 0, sizeof(refs));
	refs[0].branch = "feat-1";
	refs[0].lease = lease_of(h, n, "feat-1");
	refs[1].branch = "feat-2";
	refs[1].lease = lease_of(h, n, "feat-2");
	{
		char hex[64];

		capture(hex, sizeof(hex),
			"git --git-dir=mirrors/smart.git commit-tree -p main -m x main^{tree}");
		git_oid_fromstr(&refs[0].target, hex);
		capture(hex, sizeof(hex),
			"git --git-dir=mirrors/smart.git commit-tree -p main -m y main^{tree}");
		git_oid_fromstr(&refs[1].target, hex);
	}
	r = gitops_push_leased(repo, url, NULL, "refs/repoflow/push/9", refs, 2, &e);
	is_int(r, -EREMOTEIO, "git://: a hook declining feat-1 fails the push");
	is_str(e.code, "push_rejected", "git://: code push_rejected");
	printf("#   %s\n", e.msg);
	ok(!refs[0].pushed, "git://: feat-1 reports the rejection");
	ok(!refs[1].pushed, "git://: feat-2 was accepted, then put back");
	git_oid g2 = rev("srv/smart.git", "feat-2");
	ok(git_oid_equal(&g2, &refs[1].lease), "git://: the server's feat-2 is back at its lease");

	/* A lease that no longer holds, over the smart protocol too. */
	memset(&e, 0, sizeof(e));
	refs[0].pushed = refs[1].pushed = false;
	refs[1].branch = "feat-2";
	refs[1].lease = refs[1].target; /* a value the remote's feat-2 does not have */
	refs[1].target = refs[0].target;
	refs[0].branch = "main";
	refs[0].lease = lease_of(h, n, "main");
	r = gitops_push_leased(repo, url, NULL, "refs/repoflow/push/10", refs, 2, &e);
	is_int(r, -EAGAIN, "git://: a stale lease refuses the whole push");
	git_oid gm = rev("srv/smart.git", "main"), lm = lease_of(h, n, "main");
	ok(git_oid_equal(&gm, &lm), "git://: main (whose lease held) did not move");

	git_repository_free(repo);
	if (capture(pid, sizeof(pid), "cat daemon.pid")[0] != '\0')
		kill((pid_t)atoi(pid), SIGTERM);
}

static void test_refs_move(void)
{
	git_repository *repo = NULL;
	struct gitops_ref_move m[3];
	struct err e = {{0}, {0}};
	git_oid a, b, main_id, x, y;
	int r;

	snprintf(mirror, sizeof(mirror), "%s/mirrors/demo.git", dir);
	is_int(gitops_mirror_open(mirror, &repo, &e), 0, "open the mirror");
	a = rev("mirrors/demo.git", "refs/heads/feat-1");
	b = rev("mirrors/demo.git", "refs/heads/feat-2");
	main_id = rev("mirrors/demo.git", "refs/heads/main");
	x = new_commit("main", "x");
	y = new_commit("main", "y");

	/* One ref is not where we think: nothing moves. */
	memset(m, 0, sizeof(m));
	m[0] = (struct gitops_ref_move){"refs/heads/feat-1", a, x};
	m[1] = (struct gitops_ref_move){"refs/heads/feat-2", main_id, y}; /* wrong old value */
	r = gitops_refs_move(repo, m, 2, "test", &e);
	is_int(r, -EAGAIN, "a ref not at its old value: -EAGAIN");
	is_str(e.code, "mirror_moved", "code mirror_moved");
	git_oid g1 = rev("mirrors/demo.git", "refs/heads/feat-1");
	ok(same(&g1, &a), "and feat-1 (checked first, fine) did not move");
	ok(sh("test -z \"$(find mirrors/demo.git/refs -name '*.lock')\"") == 0,
	   "no lock file is left behind");

	/* A lock held by someone else: nothing moves. */
	ok(sh("touch mirrors/demo.git/refs/heads/feat-2.lock") == 0, "feat-2 is locked");
	m[1].old = b;
	memset(&e, 0, sizeof(e));
	r = gitops_refs_move(repo, m, 2, "test", &e);
	is_int(r, -EBUSY, "a held lock: -EBUSY");
	is_str(e.code, "mirror_locked", "code mirror_locked");
	g1 = rev("mirrors/demo.git", "refs/heads/feat-1");
	ok(same(&g1, &a), "feat-1 did not move");
	ok(sh("rm mirrors/demo.git/refs/heads/feat-2.lock && "
	      "test -z \"$(find mirrors/demo.git/refs -name '*.lock')\"") == 0,
	   "only the other holder's lock was there");

	/* All right: two moves, a delete and a create, all at once. */
	m[0] = (struct gitops_ref_move){"refs/heads/feat-1", a, x};
	m[1] = (struct gitops_ref_move){"refs/heads/feat-2", b, {{0}}};
	m[2] = (struct gitops_ref_move){"refs/heads/feat-3", {{0}}, y};
	memset(&e, 0, sizeof(e));
	r = gitops_refs_move(repo, m, 3, "test", &e);
	is_int(r, 0, "every old value holds: the refs move");
	if (r < 0)
		printf("#   %s: %s\n", e.code, e.msg);
	g1 = rev("mirrors/demo.git", "refs/heads/feat-1");
	git_oid g3 = rev("mirrors/demo.git", "refs/heads/feat-3");
	ok(same(&g1, &x), "feat-1 moved");
	ok(sh("git --git-dir=mirrors/demo.git rev-parse --verify -q refs/heads/feat-2") != 0,
	   "feat-2 was deleted");
	ok(same(&g3, &y), "feat-3 was created");

	/* A create where the ref exists is a mismatch too. */
	m[0] = (struct gitops_ref_move){"refs/heads/feat-3", {{0}}, x};
	memset(&e, 0, sizeof(e));
	is_int(gitops_refs_move(repo, m, 1, "test", &e), -EAGAIN,
	       "creating a ref that exists: -EAGAIN");
	git_repository_free(repo);
}

static void test_ancestry(void)
{
	git_repository *repo = NULL;
	struct err e = {{0}, {0}};
	git_oid a, b, mb;
	bool anc = false;

	is_int(gitops_mirror_open(mirror, &repo, &e), 0, "open the mirror");
	a = rev("mirrors/demo.git", "refs/heads/main");
	b = rev("mirrors/demo.git", "refs/heads/feat-1");
	is_int(gitops_is_ancestor(repo, &a, &b, &anc, &e), 0, "is_ancestor");
	ok(anc, "main is an ancestor of feat-1");
	is_int(gitops_is_ancestor(repo, &b, &a, &anc, &e), 0, "is_ancestor");
	ok(!anc, "feat-1 is not an ancestor of main");
	is_int(gitops_is_ancestor(repo, &a, &a, &anc, &e), 0, "is_ancestor");
	ok(anc, "a commit counts as its own ancestor");
	is_int(gitops_merge_base(repo, &a, &b, &mb, &e), 0, "merge base");
	ok(git_oid_equal(&mb, &a), "merge-base(main, feat-1) is main");
	git_repository_free(repo);
}

int main(void)
{
	char rm[128];

	snprintf(dir, sizeof(dir), "/tmp/test-gitops-push.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	setenv("HOME", dir, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.org", 1);

	ok(gitops_init() == 0, "gitops_init");
	test_push_local();
	test_push_daemon();
	test_refs_move();
	test_ancestry();
	gitops_shutdown();

	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
