/*
 * test-stack-lib.c - the library pieces under the stack workflows, each on
 * real data: the stack metadata in the store (tracking, cycles refused,
 * updates with their events, merged branches), squash-merge detection by
 * patch-id, the replay of a branch moved down its stack (checked against
 * `git rebase --onto`), and the credential files and callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gitops.h"
#include "restack.h"
#include "store.h"
#include "shell.h"
#include "tap.h"

/* --- the store -------------------------------------------------------------- */

static int64_t events(struct store *s)
{
	int64_t n = 0;
	struct err e;

	store_event_count(s, &n, &e);
	return n;
}

static void test_store(void)
{
	struct store *s = NULL;
	struct err e = {{0}, {0}};
	struct repo repo = {0};
	struct branch b = {0}, *list = NULL;
	struct branch_change c = BRANCH_CHANGE_INIT;
	struct branch_ref refs[] = {
	    {"main", "1111111111111111111111111111111111111111",
	     "1111111111111111111111111111111111111111"},
	    {"feat-1", "2222222222222222222222222222222222222222",
	     "2222222222222222222222222222222222222222"},
	    {"feat-2", "3333333333333333333333333333333333333333",
	     "3333333333333333333333333333333333333333"},
	    {"feat-3", "4444444444444444444444444444444444444444",
	     "4444444444444444444444444444444444444444"},
	};
	char path[128];
	int64_t before;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/db.sqlite", dir);
	is_int(store_open(path, 5000, STORE_MIGRATE, &s, &e), 0, "open a new store");
	store_begin(s, &e);
	is_int(store_repo_create(s, "demo", "file:///x", "main", &repo, &e), 0, "a repo");
	is_int(store_branches_refresh(s, repo.id, refs, 4, 1000, &e), 4, "four branch rows");
	store_commit(s, &e);

	store_begin(s, &e);
	before = events(s);
	is_int(store_branch_track(s, repo.id, "feat-1", "main", refs[0].head, &e), 0,
	       "track feat-1 on main");
	is_int(store_branch_track(s, repo.id, "feat-2", "feat-1", refs[1].head, &e), 0,
	       "track feat-2 on feat-1");
	is_int(store_branch_track(s, repo.id, "feat-3", "feat-2", refs[2].head, &e), 0,
	       "track feat-3 on feat-2");
	is_int(events(s) - before, 3, "one branch.updated event per change");
	is_int(store_branch_get(s, repo.id, "feat-2", &b, &e), 0, "read feat-2");
	ok(b.tracked, "feat-2 is tracked");
	is_str(b.parent, "feat-1", "its parent");
	is_str(b.base, refs[1].head, "its base");
	is_str(b.state, "active", "active");
	branch_release(&b);

	/* Cycles. */
	memset(&e, 0, sizeof(e));
	is_int(store_branch_track(s, repo.id, "feat-1", "feat-3", refs[3].head, &e), -ELOOP,
	       "feat-1 on feat-3 (stacked above it) is a cycle");
	is_str(e.code, "cycle", "code cycle");
	c.parent = "feat-1";
	is_int(store_branch_update(s, repo.id, "feat-1", &c, &e), -ELOOP,
	       "a branch as its own parent is a cycle");
	c.parent = "feat-2";
	is_int(store_branch_update(s, repo.id, "feat-1", &c, &e), -ELOOP,
	       "feat-1 on feat-2 is a cycle");
	c.parent = "main";
	before = events(s);
	is_int(store_branch_update(s, repo.id, "feat-3", &c, &e), 0, "feat-3 onto main is fine");
	is_int(events(s) - before, 1, "with its event");

	/* An update that changes nothing a client sees writes no event. */
	c = (struct branch_change)BRANCH_CHANGE_INIT;
	c.synced_at = 5000;
	before = events(s);
	is_int(store_branch_update(s, repo.id, "feat-3", &c, &e), 0, "touch synced_at only");
	is_int(events(s) - before, 0, "no event for synced_at alone");
	is_int(store_branch_set_needs_restack(s, repo.id, "feat-3", true, &e), 0,
	       "needs_restack on");
	is_int(events(s) - before, 1, "an event for needs_restack");
	is_int(store_branch_get(s, repo.id, "feat-3", &b, &e), 0, "read feat-3");
	ok(b.needs_restack, "feat-3 needs restack");
	is_str(b.parent, "main", "feat-3's parent is main");
	branch_release(&b);
	c = (struct branch_change)BRANCH_CHANGE_INIT;
	c.base = refs[0].head;
	c.head = "5555555555555555555555555555555555555555";
	c.needs_restack = 0;
	is_int(store_branch_update(s, repo.id, "feat-3", &c, &e), 0, "new base and head");
	is_int(store_branch_get(s, repo.id, "feat-3", &b, &e), 0, "read feat-3");
	is_str(b.base, refs[0].head, "base set");
	is_str(b.head, c.head, "head set");
	ok(!b.needs_restack, "needs_restack off");
	branch_release(&b);
	is_int(store_branch_update(s, repo.id, "nope", &c, &e), -ENOENT, "no such row: -ENOENT");

	/* Merged. */
	is_int(store_branch_mark_merged(s, repo.id, "feat-1", &e), 0, "feat-1 is merged");
	is_int(store_branch_get(s, repo.id, "feat-1", &b, &e), 0, "read feat-1");
	ok(!b.tracked, "a merged branch is not tracked");
	is_str(b.state, "merged", "its state is merged");
	ok(b.parent == NULL && b.base == NULL, "parent and base are cleared");
	branch_release(&b);
	is_int(store_branch_list_tracked(s, repo.id, &list, &n, &e), 0, "list tracked");
	is_int(n, 2, "two tracked branches are left");
	if (n == 2) {
		is_str(list[0].name, "feat-2", "by name (0)");
		is_str(list[1].name, "feat-3", "by name (1)");
	}
	branch_array_free(list, n);

	/* A refresh keeps a merged row merged, and a tracked one gone from the remote is missing.
	 */
	is_int(store_branches_refresh(s, repo.id, refs, 2, 2000, &e) >= 0, 1,
	       "refresh without feat-2/3");
	is_int(store_branch_get(s, repo.id, "feat-1", &b, &e), 0, "read feat-1");
	is_str(b.state, "merged", "still merged");
	branch_release(&b);
	is_int(store_branch_get(s, repo.id, "feat-2", &b, &e), 0, "read feat-2");
	is_str(b.state, "missing", "feat-2 is missing");
	ok(b.tracked, "and still tracked");
	branch_release(&b);
	/* Tracking brings a row in if the projection has none. */
	is_int(store_branch_track(s, repo.id, "new", "main", refs[0].head, &e), 0,
	       "track a branch without a row");
	is_int(store_branch_get(s, repo.id, "new", &b, &e), 0, "it has a row");
	ok(b.tracked, "tracked");
	branch_release(&b);
	store_commit(s, &e);
	repo_release(&repo);
	store_close(s);
}

/* --- squash merges -------------------------------------------------------- */

static void test_squash(void)
{
	git_repository *repo = NULL;
	struct gitops_squash_query q[3];
	struct err e = {{0}, {0}};
	git_oid squash;
	int r;

	ok(sh("git init -q -b main sq && cd sq && "
	      "echo a >a && git add a && git commit -q -m a && "
	      "git checkout -q -b feat-1 && echo b >b && git add b && git commit -q -m b1 && "
	      "echo b2 >>b && git commit -q -am b2 && "
	      "git checkout -q -b feat-2 && echo c >c && git add c && git commit -q -m c && "
	      "git checkout -q -b other main && echo o >o && git add o && git commit -q -m o && "
	      "git checkout -q main && echo t >t && git add t && git commit -q -m t && "
	      "git merge -q --squash feat-1 && git commit -q -m 'feat-1 squashed' && "
	      "git tag squash && echo u >u && git add u && git commit -q -m u") == 0,
	   "a repo where feat-1 was squash-merged into main");
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/sq", dir);
		is_int(git_repository_open(&repo, p), 0, "open it");
	}
	squash = rev("sq/.git", "squash");
	q[0].base = rev("sq/.git", "main~3");
	q[0].head = rev("sq/.git", "feat-1");
	q[1].base = rev("sq/.git", "feat-1");
	q[1].head = rev("sq/.git", "feat-2");
	q[2].base = rev("sq/.git", "main~3");
	q[2].head = rev("sq/.git", "other");
	git_oid tip = rev("sq/.git", "main");
	r = gitops_find_squash_merges(repo, &tip, q, 3, 1000, &e);
	is_int(r, 0, "find squash merges");
	ok(q[0].found, "feat-1's whole change is the squash commit");
	ok(q[0].found && git_oid_equal(&q[0].commit, &squash), "and it names that commit");
	ok(!q[1].found, "feat-2 (stacked on it, own change) is not merged");
	ok(!q[2].found, "an unrelated branch is not merged");
	r = gitops_find_squash_merges(repo, &tip, q, 1, 1, &e);
	is_int(r, 0, "a scan bounded at one commit");
	ok(!q[0].found, "does not reach the squash commit two back");
	git_repository_free(repo);
}

/* --- moving a branch down its stack ----------------------------------------- */

static void test_replay(void)
{
	git_repository *repo = NULL;
	git_signature *sig = NULL;
	struct restack_result res = {0};
	struct err e = {{0}, {0}};
	char p[256], out[4096], want[4096], hex[GIT_OID_HEXSZ + 1];
	git_oid base, head, onto;
	int r;

	ok(sh("git init -q -b main rp && cd rp && "
	      "echo a >a && git add a && git commit -q -m a && "
	      "git checkout -q -b feat-1 && echo b >b && git add b && git commit -q -m b && "
	      "git checkout -q -b feat-2 && echo c >c && git add c && git commit -q -m c1 && "
	      "echo c2 >>c && git commit -q -am c2") == 0,
	   "main <- feat-1 <- feat-2");
	snprintf(p, sizeof(p), "%s/rp", dir);
	is_int(git_repository_open(&repo, p), 0, "open it");
	git_signature_now(&sig, "repoflow", "repoflow@localhost");
	base = rev("rp/.git", "feat-1");
	head = rev("rp/.git", "feat-2");
	onto = rev("rp/.git", "main");
	r = gitops_restack_onto(repo, &base, &head, &onto, sig, &res, &e);
	is_int(r, 0, "feat-2 onto main (an ancestor): replayed");
	ok(res.changed && !res.conflicted, "it changed");
	git_oid_tostr(hex, sizeof(hex), &res.new_tip);
	ok(sh("cd rp && git update-ref refs/heads/moved %s", hex) == 0, "keep the result");
	ok(sh("cd rp && git checkout -q -b oracle feat-2 && git rebase -q --onto main feat-1 "
	      "oracle") == 0,
	   "git rebase --onto main feat-1 feat-2");
	capture(want, sizeof(want),
		"cd rp && git log --format='%%T %%an %%s' main..oracle | tr '\\n' ,");
	capture(out, sizeof(out),
		"cd rp && git log --format='%%T %%an %%s' main..moved | tr '\\n' ,");
	is_str(out, want, "same trees, authors and messages as git");
	ok(sh("cd rp && test \"$(git rev-parse moved~2)\" = \"$(git rev-parse main)\"") == 0,
	   "two commits, directly on main");
	restack_result_release(&res);

	/* Onto its own parent's tip that it already has: nothing to do. */
	r = gitops_restack_onto(repo, &base, &head, &base, sig, &res, &e);
	is_int(r, 0, "feat-2 onto feat-1 (its base)");
	ok(!res.changed && git_oid_equal(&res.new_tip, &head), "unchanged");
	restack_result_release(&res);
	git_signature_free(sig);
	git_repository_free(repo);
}

/* --- credentials -------------------------------------------------------------- */

static void test_cred(void)
{
	struct gitops_cred c = {NULL, NULL};
	struct gitops_cred_state cs = {0};
	git_credential *cred = NULL;
	char d[128];
	int r;

	snprintf(d, sizeof(d), "%s/creds", dir);
	ok(sh("mkdir creds && printf '  s3cret-token \\n' >creds/demo.token && "
	      "printf 'x' >creds/default.token && ssh-keygen -q -t ed25519 -N '' -f "
	      "creds/default.ssh "
	      "|| printf 'not a key' >creds/default.ssh") == 0,
	   "a credentials dir");
	is_int(gitops_cred_find(d, "demo", &c), 0, "find demo's credentials");
	ok(c.token_file != NULL && strstr(c.token_file, "/demo.token") != NULL,
	   "its own token file");
	ok(c.ssh_key_file != NULL && strstr(c.ssh_key_file, "/default.ssh") != NULL,
	   "the default ssh key");
	gitops_cred_release(&c);
	is_int(gitops_cred_find(d, "other", &c), 0, "find another repo's");
	ok(c.token_file != NULL && strstr(c.token_file, "/default.token") != NULL,
	   "the default token");
	gitops_cred_release(&c);
	is_int(gitops_cred_find("/nonexistent", "demo", &c), 0, "a missing dir");
	ok(c.token_file == NULL && c.ssh_key_file == NULL, "gives none");

	is_int(gitops_cred_find(d, "demo", &c), 0, "find demo's credentials again");
	cs.cred = &c;
	r = gitops_cred_acquire(&cred, "https://example.org/x.git", NULL,
				GIT_CREDENTIAL_USERPASS_PLAINTEXT, &cs);
	is_int(r, 0, "https: the token is offered");
	ok(cred != NULL && git_credential_has_username(cred), "as a user name and password");
	is_str(cred != NULL ? git_credential_get_username(cred) : NULL, "x-access-token",
	       "the default user name");
	git_credential_free(cred);
	cred = NULL;
	r = gitops_cred_acquire(&cred, "https://example.org/x.git", NULL,
				GIT_CREDENTIAL_USERPASS_PLAINTEXT, &cs);
	is_int(r, GIT_EAUTH, "asked again: refused (no loop)");
	ok(cs.refused, "the state says refused");
	ok(git_error_last() != NULL && strstr(git_error_last()->message, "s3cret") == NULL,
	   "the message has no secret in it");

	memset(&cs, 0, sizeof(cs));
	cs.cred = &c;
	r = gitops_cred_acquire(&cred, "ssh://git@example.org/x.git", "git", GIT_CREDENTIAL_SSH_KEY,
				&cs);
	ok(r == 0 || git_error_last() != NULL, "ssh: the key is offered (or libgit2 lacks ssh)");
	if (r == 0) {
		is_str(git_credential_get_username(cred), "git", "with the URL's user");
		git_credential_free(cred);
	}
	gitops_cred_release(&c);

	memset(&cs, 0, sizeof(cs));
	r = gitops_cred_acquire(&cred, "https://example.org/x.git", NULL,
				GIT_CREDENTIAL_USERPASS_PLAINTEXT, &cs);
	is_int(r, GIT_EAUTH, "nothing configured: refused");
	ok(cs.refused, "and marked refused");
}

int main(void)
{
	char rm[128];

	snprintf(dir, sizeof(dir), "/tmp/test-stack-lib.XXXXXX");
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
	test_store();
	test_squash();
	test_replay();
	test_cred();
	gitops_shutdown();

	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
