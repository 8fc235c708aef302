/*
 * test-restack.c - restack_branch against the git CLI as the oracle.
 *
 * Every case builds a real repository with git in a throwaway directory
 * (`work`, as a person would), clones it bare (`bare.git`, the mirror the
 * engine runs on), and restacks a branch there with restack_branch. The
 * same replay is then run by `git rebase --onto` in a non-bare clone
 * (`oracle`), and the two results must agree: the same commits above the
 * new base, compared by tree, raw message, encoding and author (name,
 * email, date, zone); or, when git stops, a conflict on the same commit,
 * onto a commit with the same history, with the same unmerged paths.
 * Identities and dates are fixed; the author date advances by a "tick"
 * per commit, with a different time zone each time. Also: the in-memory
 * object store (restack_odb_*) and bad input.
 *
 * The directory is removed when everything passed, kept otherwise (or
 * with KEEP=1 in the environment); its `log` has every git command's output.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "restack.h"
#include "tap.h"

static char dir[64];
static git_signature *bot;
static git_oid
    clean_tip; /* the clean case's new tip (commits are deterministic: fixed committer) */

/* Shell helpers every command gets: `tick` advances the author date, `cf FILE TEXT MSG` commits. */
#define PRELUDE                                                                                    \
	"tick() { n=$(cat \"$T/.tick\" 2>/dev/null || echo 0); n=$((n + 1)); "                     \
	"echo $n >\"$T/.tick\"; export GIT_AUTHOR_DATE=\"$((1700000000 + n * 100)) +0$((n % "      \
	"10))30\"; }; "                                                                            \
	"cf() { tick; mkdir -p \"$(dirname \"$1\")\"; printf '%s\\n' \"$2\" >\"$1\"; "             \
	"git add -- \"$1\"; git commit -q -m \"$3\"; }; "

/* Run a shell command built from fmt in the test directory; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = snprintf(cmd, sizeof(cmd), "T='%s'; cd \"$T\" && %s( ", dir, PRELUDE);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ) >>\"$T/log\" 2>&1");
	return system(cmd);
}

/* Every line a command prints (at most max, without newlines) into lines; returns the count. */
static size_t capture_lines(char lines[][256], size_t max, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t capture_lines(char lines[][256], size_t max, const char *fmt, ...)
{
	char cmd[2048];
	size_t k = 0;
	va_list ap;
	FILE *p;
	int n;

	va_start(ap, fmt);
	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (p == NULL)
		return 0;
	while (k < max && fgets(lines[k], 256, p) != NULL) {
		lines[k][strcspn(lines[k], "\n")] = '\0';
		k++;
	}
	pclose(p);
	return k;
}

static void repositoryp(git_repository **p)
{
	git_repository_free(*p);
}

/* The commit a revision names in repo. */
static int resolve(git_repository *repo, const char *spec, git_oid *ret)
{
	git_object *obj = NULL;
	git_object *peeled = NULL;
	int r = git_revparse_single(&obj, repo, spec);

	if (r == 0)
		r = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
	if (r == 0)
		git_oid_cpy(ret, git_object_id(peeled));
	git_object_free(peeled);
	git_object_free(obj);
	return r;
}

/* The commits from stop (excluded) up to tip along first parents, oldest first. */
struct chain {
	git_commit *c[64];
	size_t n;
};

static void chain_release(struct chain *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		git_commit_free(ch->c[i]);
	ch->n = 0;
}

static int chain_load(git_repository *repo, const git_oid *tip, const git_oid *stop,
		      struct chain *ch)
{
	git_oid cur = *tip;

	ch->n = 0;
	while (!git_oid_equal(&cur, stop)) {
		git_commit *c;

		if (ch->n == ARRAY_SIZE(ch->c) || git_commit_lookup(&c, repo, &cur) < 0)
			return -1;
		ch->c[ch->n++] = c;
		if (git_commit_parentcount(c) != 1)
			return -1;
		git_oid_cpy(&cur, git_commit_parent_id(c, 0));
	}
	for (size_t i = 0; i < ch->n / 2; i++) {
		git_commit *t = ch->c[i];

		ch->c[i] = ch->c[ch->n - 1 - i];
		ch->c[ch->n - 1 - i] = t;
	}
	return 0;
}

static bool same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/*
 * The two histories above `stop` agree commit by commit: tree, raw message,
 * encoding, author. `ours_new` says our commits must carry the bot as
 * committer.
 */
static void compare_chains(const char *what, git_repository *ra, const git_oid *ta,
			   git_repository *rb, const git_oid *tb, const git_oid *stop,
			   bool ours_new)
{
	struct chain a = {{0}, 0}, b = {{0}, 0};
	char label[512];
	bool same = true;

	snprintf(label, sizeof(label), "%s: both histories reach the new base", what);
	if (!ok(chain_load(ra, ta, stop, &a) == 0 && chain_load(rb, tb, stop, &b) == 0, label))
		goto done;
	snprintf(label, sizeof(label), "%s: as many commits as git (%zu)", what, b.n);
	is_int(a.n, b.n, label);
	for (size_t i = 0; i < a.n && i < b.n; i++) {
		const git_signature *sa = git_commit_author(a.c[i]),
				    *sb = git_commit_author(b.c[i]);
		bool t = git_oid_equal(git_commit_tree_id(a.c[i]), git_commit_tree_id(b.c[i]));
		bool m = same_str(git_commit_message_raw(a.c[i]), git_commit_message_raw(b.c[i]));
		bool en = same_str(git_commit_message_encoding(a.c[i]),
				   git_commit_message_encoding(b.c[i]));
		bool au = strcmp(sa->name, sb->name) == 0 && strcmp(sa->email, sb->email) == 0 &&
			  sa->when.time == sb->when.time && sa->when.offset == sb->when.offset &&
			  sa->when.sign == sb->when.sign;
		bool cm = !ours_new || strcmp(git_commit_committer(a.c[i])->name, bot->name) == 0;

		if (!(t && m && en && au && cm)) {
			same = false;
			printf("#   commit %zu (%s): tree %d message %d encoding %d author %d "
			       "committer %d\n",
			       i + 1, git_commit_summary(b.c[i]), t, m, en, au, cm);
		}
	}
	snprintf(label, sizeof(label), "%s: same trees, messages, authors as git, in order", what);
	ok(same && a.n == b.n, label);
done:
	chain_release(&a);
	chain_release(&b);
}

/* A restack case: the repositories and the revisions, in the test directory's `name`. */
struct kase {
	const char *name;
	git_repository *bare;
	git_repository *oracle;
	git_oid base, head, onto;
	int oracle_rc; /* git rebase's exit status */
	struct restack_result res;
	int rc;
};

static void kase_release(struct kase *k)
{
	restack_result_release(&k->res);
	git_repository_free(k->bare);
	git_repository_free(k->oracle);
	k->bare = k->oracle = NULL;
}

/*
 * Clone name/work bare, resolve the revisions there, run restack_branch on
 * it and `git rebase --onto` in a clone, and compare. check_paths: compare
 * the conflicting paths with git's unmerged paths (when git stops).
 */
static void run_case(struct kase *k, const char *base, const char *head, const char *onto,
		     bool check_paths)
{
	char path[256], hb[GIT_OID_HEXSZ + 1], hh[GIT_OID_HEXSZ + 1], ho[GIT_OID_HEXSZ + 1];
	char refs_before[64][256], refs_after[64][256], label[512];
	struct err e = {{0}, {0}};
	bool same_refs;
	size_t nb, na;

	snprintf(label, sizeof(label), "%s: bare mirror made", k->name);
	snprintf(path, sizeof(path), "%s/%s/bare.git", dir, k->name);
	if (!ok(sh("cd %s && git clone -q --bare work bare.git", k->name) == 0 &&
		    git_repository_open_bare(&k->bare, path) == 0,
		label))
		return;
	snprintf(label, sizeof(label), "%s: revisions resolve", k->name);
	if (!ok(resolve(k->bare, base, &k->base) == 0 && resolve(k->bare, head, &k->head) == 0 &&
		    resolve(k->bare, onto, &k->onto) == 0,
		label))
		return;
	git_oid_tostr(hb, sizeof(hb), &k->base);
	git_oid_tostr(hh, sizeof(hh), &k->head);
	git_oid_tostr(ho, sizeof(ho), &k->onto);

	nb = capture_lines(refs_before, 64, "git --git-dir=%s/bare.git for-each-ref", k->name);
	k->rc = restack_branch(k->bare, &k->base, &k->head, &k->onto, bot, &k->res, &e);
	snprintf(label, sizeof(label), "%s: restack_branch returns 0", k->name);
	is_int(k->rc, 0, label);
	if (k->rc < 0)
		printf("#   %s: %s\n", e.code, e.msg);
	na = capture_lines(refs_after, 64, "git --git-dir=%s/bare.git for-each-ref", k->name);
	snprintf(label, sizeof(label), "%s: no ref moved in the mirror", k->name);
	same_refs = na == nb && nb > 0;
	for (size_t i = 0; same_refs && i < na; i++)
		same_refs = strcmp(refs_before[i], refs_after[i]) == 0;
	ok(same_refs, label);

	/* The oracle: the same replay by git. */
	k->oracle_rc = sh("cd %s && git clone -q work oracle && cd oracle && "
			  "git checkout -q -B restack-oracle %s && git rebase --onto %s %s",
			  k->name, hh, ho, hb);
	snprintf(path, sizeof(path), "%s/%s/oracle", dir, k->name);
	snprintf(label, sizeof(label), "%s: the oracle clone opens", k->name);
	if (!ok(git_repository_open(&k->oracle, path) == 0, label) || k->rc < 0)
		return;

	snprintf(label, sizeof(label), "%s: stops on a conflict exactly when git does", k->name);
	if (!ok(k->res.conflicted == (k->oracle_rc != 0), label)) {
		printf("#   git rebase exit %d, conflicted %d\n", k->oracle_rc, k->res.conflicted);
		return;
	}
	if (!k->res.conflicted) {
		git_oid git_tip;

		resolve(k->oracle, "HEAD", &git_tip);
		compare_chains(k->name, k->bare, &k->res.new_tip, k->oracle, &git_tip, &k->onto,
			       k->res.changed);
		snprintf(label, sizeof(label), "%s: new base is onto", k->name);
		ok(git_oid_equal(&k->res.new_base, &k->onto), label);
		snprintf(label, sizeof(label), "%s: changed says whether the tip moved", k->name);
		ok(k->res.changed == !git_oid_equal(&k->res.new_tip, &k->head), label);
	} else {
		char lines[32][256], cname[256];
		git_oid stopped, git_head;
		size_t n;

		resolve(k->oracle, "REBASE_HEAD", &stopped);
		resolve(k->oracle, "HEAD", &git_head);
		snprintf(label, sizeof(label), "%s: stopped on the commit git stopped on", k->name);
		ok(git_oid_equal(&stopped, &k->res.conflict.commit), label);
		snprintf(cname, sizeof(cname), "%s (picks before the conflict)", k->name);
		compare_chains(cname, k->bare, &k->res.conflict.onto, k->oracle, &git_head,
			       &k->onto, true);
		if (check_paths) {
			bool same;

			n = capture_lines(lines, 32,
					  "git -C %s/oracle diff --name-only --diff-filter=U",
					  k->name);
			same = n == k->res.conflict.npaths;
			for (size_t i = 0; same && i < n; i++)
				same = strcmp(lines[i], k->res.conflict.paths[i]) == 0;
			snprintf(label, sizeof(label), "%s: the conflicting paths are git's",
				 k->name);
			if (!ok(same, label))
				for (size_t i = 0; i < k->res.conflict.npaths; i++)
					printf("#   ours: %s\n", k->res.conflict.paths[i]);
		}
	}
}

/* Start a case: a fresh directory with `work` on main holding the given setup. */
static int setup(const char *name, const char *script)
{
	return sh("rm -rf %s && mkdir %s && cd %s && git init -q -b main work && cd work && %s",
		  name, name, name, script);
}

/* Trunk moved; the branch's three commits replay cleanly, merging a file both sides changed. */
static void test_clean(void)
{
	struct kase k = {.name = "clean"};

	ok(setup(k.name,
		 "printf '%s\\n' 1 2 3 4 5 6 7 8 9 10 >shared.txt && "
		 "mkdir -p src/a && echo b >src/a/b.c && echo c >src/a/c.c && echo top >top.txt && "
		 "git add . && "
		 "cf README base base && git tag base && "
		 "git checkout -q -b feat && tick && sed -i 's/^2$/two/' shared.txt && "
		 "git commit -qam 'feat: shared line 2' && "
		 "tick && GIT_AUTHOR_NAME='Ann Other' GIT_AUTHOR_EMAIL=ann@example.org "
		 "cf src/a/b.c 'b changed' 'feat: b' && "
		 "tick && echo x >tool.sh && chmod +x tool.sh && git add tool.sh && "
		 "printf '\\n\\nsubject  \\n\\n# not a comment\\n\\nbody   \\n\\n' >msg && "
		 "git commit -q --cleanup=verbatim -F msg && "
		 "tick && echo y >>top.txt && git add top.txt && printf 'no newline' >msg && "
		 "git commit -q --cleanup=verbatim -F msg && "
		 "tick && echo z >latin.txt && git add latin.txt && "
		 "printf 'latin \\351t\\351\\n' >msg && "
		 "git -c i18n.commitEncoding=ISO-8859-1 commit -q -F msg && "
		 "git checkout -q main && tick && sed -i 's/^9$/nine/' shared.txt && "
		 "git commit -qam 'main: shared line 9' && cf src/a/m.c m 'main: m' && "
		 "cf other/o.txt o 'main: o'") == 0,
	   "clean: repository built");
	run_case(&k, "base", "feat", "main", true);
	is_int(k.res.picked, 5, "clean: five commits picked");
	is_int(k.res.dropped_empty + k.res.kept_empty + k.res.skipped_merges, 0,
	       "clean: nothing dropped, kept empty or skipped");
	ok(k.res.changed && !k.res.base_healed, "clean: changed, base not healed");
	git_oid_cpy(&clean_tip, &k.res.new_tip);
	kase_release(&k);
}

/* Trunk and branch change the same lines: stop on the commit, report the paths. */
static void test_conflict(void)
{
	struct kase k = {.name = "conflict"};
	git_oid second, first_tree;
	git_commit *c = NULL;

	ok(setup(k.name, "printf '%s\\n' 1 2 3 4 5 >shared.txt && mkdir -p dir/sub && "
			 "echo c >dir/sub/c.txt && git add . && cf README base base && git tag "
			 "base && git checkout -q -b feat && "
			 "cf ok.txt ok 'feat: ok' && tick && sed -i 's/^3$/feat/' shared.txt && "
			 "echo feat >dir/sub/c.txt && git commit -qam 'feat: conflicting' && "
			 "cf later.txt later 'feat: later' && git checkout -q main && tick && "
			 "sed -i 's/^3$/main/' shared.txt && echo main >dir/sub/c.txt && "
			 "git commit -qam 'main: same lines'") == 0,
	   "conflict: repository built");
	run_case(&k, "base", "feat", "main", true);
	ok(k.res.conflicted, "conflict: reported");
	resolve(k.bare, "feat~1", &second);
	ok(git_oid_equal(&k.res.conflict.commit, &second), "conflict: on the second commit");
	is_int(k.res.conflict.npaths, 2, "conflict: two paths");
	if (k.res.conflict.npaths == 2) {
		is_str(k.res.conflict.paths[0], "dir/sub/c.txt", "conflict: path 1, sorted");
		is_str(k.res.conflict.paths[1], "shared.txt", "conflict: path 2, sorted");
	}
	/* onto is the replayed first commit: its tree is main's plus ok.txt. */
	ok(git_commit_lookup(&c, k.bare, &k.res.conflict.onto) == 0 &&
	       git_commit_parentcount(c) == 1 && git_oid_equal(git_commit_parent_id(c, 0), &k.onto),
	   "conflict: onto is the first pick, on main");
	if (c != NULL && resolve(k.oracle, "HEAD^{tree}", &first_tree) == 0)
		ok(git_oid_equal(git_commit_tree_id(c), &first_tree),
		   "conflict: onto has the tree git had when it stopped");
	git_commit_free(c);
	kase_release(&k);
}

/* Trunk deleted a file the branch changes: libgit2 decides (modify/delete), like git. */
static void test_modify_delete(void)
{
	struct kase k = {.name = "modify-delete"};

	ok(setup(
	       k.name,
	       "cf gone.txt gone 'base: gone' && cf keep.txt keep 'base: keep' && git tag base && "
	       "git checkout -q -b feat && cf gone.txt 'gone changed' 'feat: change' && "
	       "git checkout -q main && tick && git rm -q gone.txt && "
	       "git commit -qm 'main: delete'") == 0,
	   "modify-delete: repository built");
	run_case(&k, "base", "feat", "main", true);
	ok(k.res.conflicted && k.res.conflict.npaths == 1, "modify-delete: one conflicting path");
	kase_release(&k);
}

/* A commit cherry-picked to trunk comes out empty and is dropped, as git does. */
static void test_already_applied(void)
{
	struct kase k = {.name = "applied"};

	ok(setup(k.name,
		 "printf '%s\\n' 1 2 3 4 5 >f.txt && git add f.txt && cf README base base && "
		 "git tag base && git checkout -q -b feat && cf a.txt a 'feat: a' && "
		 "tick && sed -i 's/^4$/four/' f.txt && git commit -qam 'feat: four' && "
		 "cf c.txt c 'feat: c' && git checkout -q main && cf m.txt m 'main: m' && "
		 "tick && git cherry-pick feat~1 && cf n.txt n 'main: n'") == 0,
	   "applied: repository built");
	run_case(&k, "base", "feat", "main", true);
	is_int(k.res.dropped_empty, 1, "applied: the cherry-picked commit is dropped");
	is_int(k.res.picked, 2, "applied: the other two are picked");
	kase_release(&k);
}

/*
 * A commit applied to trunk and then changed further there: `git rebase
 * --onto` does not compare patch-ids with the new base, so git stops on a
 * conflict rather than dropping it, and so must we.
 */
static void test_applied_then_changed(void)
{
	struct kase k = {.name = "applied-changed"};

	ok(setup(k.name,
		 "printf '%s\\n' a x y z >f.txt && git add f.txt && cf README base base && "
		 "git tag base && git checkout -q -b feat && tick && sed -i 's/^a$/b/' f.txt && "
		 "git commit -qam 'feat: a to b' && cf g.txt g 'feat: g' && "
		 "git checkout -q main && tick && git cherry-pick feat~1 && tick && "
		 "sed -i 's/^b$/c/' f.txt && git commit -qam 'main: b to c'") == 0,
	   "applied-changed: repository built");
	run_case(&k, "base", "feat", "main", true);
	ok(k.res.conflicted, "applied-changed: a conflict, as with git (no patch-id drop)");
	kase_release(&k);
}

/* A commit that becomes empty is dropped; a commit that was empty is kept. */
static void test_empty(void)
{
	struct kase k = {.name = "empty"};

	ok(setup(k.name,
		 "printf '%s\\n' 1 2 3 >f.txt && git add f.txt && cf README base base && "
		 "git tag base && git checkout -q -b feat && tick && echo 4 >>f.txt && "
		 "git commit -qam 'feat: add 4' && tick && "
		 "git commit -q --allow-empty -m 'feat: empty on purpose' && "
		 "cf g.txt g 'feat: g' && git checkout -q main && tick && echo 4 >>f.txt && "
		 "echo other >o.txt && git add o.txt && git commit -qam 'main: 4 and more'") == 0,
	   "empty: repository built");
	run_case(&k, "base", "feat", "main", true);
	is_int(k.res.dropped_empty, 1, "empty: the commit that became empty is dropped");
	is_int(k.res.kept_empty, 1, "empty: the commit that was empty is kept");
	is_int(k.res.picked, 2, "empty: two commits written");
	kase_release(&k);
}

/* Merge commits inside the branch: skipped, their sides linearised in git's order. */
static void test_merges(void)
{
	struct kase k = {.name = "merges"};

	ok(setup(k.name, "cf README base base && git tag base && git checkout -q -b side1 && "
			 "cf s1.txt s1 'side1: s1' && git checkout -q -b feat base && "
			 "cf a1.txt a1 'feat: a1' && cf a2.txt a2 'feat: a2' && tick && "
			 "git merge -q --no-ff --no-edit side1 -m 'merge side1' && "
			 "git checkout -q -b side2 && cf t1.txt t1 'side2: t1' && cf t2.txt t2 "
			 "'side2: t2' && "
			 "git checkout -q feat && cf a3.txt a3 'feat: a3' && tick && "
			 "git merge -q --no-ff --no-edit side2 -m 'merge side2' && cf a4.txt a4 "
			 "'feat: a4' && "
			 "git checkout -q main && cf m.txt m 'main: m'") == 0,
	   "merges: repository built");
	run_case(&k, "base", "feat", "main", true);
	is_int(k.res.skipped_merges, 2, "merges: two merge commits skipped");
	is_int(k.res.picked, 7, "merges: seven commits picked");
	kase_release(&k);
}

/*
 * The branch was rewritten elsewhere: its recorded base (the parent's old
 * tip) is no longer in it. The base heals to merge-base(branch, parent),
 * which is what `git rebase --onto parent <merge-base> branch` replays;
 * git with the stale base gives the same result here, checked too.
 */
static void test_healing(void)
{
	struct kase k = {.name = "healing"};
	git_oid want;

	ok(setup(k.name,
		 "cf README base 'base' && git checkout -q -b feat-1 && "
		 "cf p.txt p1 'feat-1: p' && git tag oldbase && git checkout -q -b feat-2 && "
		 "cf c1.txt c1 'feat-2: c1' && cf c2.txt c2 'feat-2: c2' && "
		 "git checkout -q feat-1 && tick && echo amended >p.txt && "
		 "git commit -q -a --amend -m 'feat-1: p, amended' && git tag newbase && "
		 "git checkout -q feat-2 && git rebase -q --onto feat-1 oldbase feat-2 && "
		 "git checkout -q feat-1 && cf q.txt q 'feat-1: q'") == 0,
	   "healing: repository built");
	/* The recorded base is stale; git given the same stale base agrees with the healed replay.
	 */
	run_case(&k, "oldbase", "feat-2", "feat-1", true);
	ok(k.res.base_healed, "healing: base_healed");
	ok(resolve(k.bare, "newbase", &want) == 0 && git_oid_equal(&k.res.healed_base, &want),
	   "healing: healed to merge-base(branch, parent)");
	is_int(k.res.picked, 2, "healing: the branch's own two commits picked");
	kase_release(&k);

	/* And the healed replay is `git rebase --onto feat-1 <merge-base> feat-2`. */
	k = (struct kase){.name = "healing"};
	ok(sh("cd healing && rm -rf bare.git oracle") == 0, "healing: again from the merge-base");
	run_case(&k, "newbase", "feat-2", "feat-1", true);
	ok(!k.res.base_healed, "healing: a base in the branch needs no healing");
	kase_release(&k);
}

/* The new base is already in the branch: nothing to do, as with git. */
static void test_onto_ancestor(void)
{
	struct kase k = {.name = "ancestor"};

	ok(setup(k.name,
		 "cf README base base && git tag base && cf m1.txt m1 'main: m1' && "
		 "git checkout -q -b feat && cf f.txt f 'feat: f' && git checkout -q main") == 0,
	   "ancestor: repository built");
	run_case(&k, "base", "feat", "main", true);
	ok(!k.res.changed && git_oid_equal(&k.res.new_tip, &k.head), "ancestor: unchanged");
	ok(git_oid_equal(&k.res.new_base, &k.onto), "ancestor: new base is onto");
	is_int(k.res.picked, 0, "ancestor: nothing picked");
	kase_release(&k);
}

/*
 * One commit on each side, built from the same base (a text file, a
 * directory, a symlink, a binary file), through every kind of merge:
 * where git merges we must give git's tree, where git stops we must stop.
 * The rename cases are those git detects and the engine does not: where
 * renames would make git stop, we stop too (see restack.c).
 */
static void test_merge_kinds(void)
{
	static const struct {
		const char *name, *main_ops, *feat_ops;
		bool conflict, check_paths;
	} cases[] = {
	    {"same-file", "sed -i s/^10$/ten/ a.txt", "sed -i s/^40$/forty/ a.txt", false, true},
	    {"mode-and-content", "chmod +x a.txt", "sed -i s/^10$/ten/ a.txt", false, true},
	    {"new-dir-both", "mkdir -p n/m && echo 1 >n/m/one", "mkdir -p n/m && echo 2 >n/m/two",
	     false, true},
	    {"add-add", "echo m >n.txt", "echo f >n.txt", true, true},
	    {"add-add-prefix", "printf '1\\n2\\n' >n.txt", "printf '1\\n2\\n3\\n' >n.txt", true,
	     true},
	    {"symlink", "ln -sfn d/x.txt link", "ln -sfn d/y.txt link", true, true},
	    {"binary", "printf 'bin\\0ary2\\n' >b.bin", "printf 'bin\\0ary3\\n' >b.bin", true,
	     true},
	    {"dir-delete-modify", "sed -i s/^110$/x/ d/x.txt", "git rm -rq d", true, true},
	    /* git names the moved file a.txt~<commit>: compare the verdict only */
	    {"file-dir", "git rm -q a.txt && mkdir a.txt && echo y >a.txt/y",
	     "sed -i s/^10$/ten/ a.txt", true, false},
	    /* git: rename/delete */
	    {"rename-delete", "git mv a.txt b.txt", "git rm -q a.txt", true, false},
	    /* each side deletes one of the directory's two files: it goes */
	    {"dir-emptied", "git rm -q d/y.txt", "git rm -q d/x.txt", false, true},
	    /* git: rename/delete, where both sides leave the same directory behind */
	    {"rename-delete-subdir", "mkdir z && git mv d/x.txt z/q.txt", "git rm -q d/x.txt", true,
	     false},
	    /* git: rename/delete, the other way */
	    {"delete-rename", "git rm -q a.txt", "git mv a.txt c.txt", true, false},
	    /* git: rename/rename(1to2) */
	    {"rename-rename", "git mv a.txt b.txt", "git mv a.txt c.txt", true, false},
	    /* git: directory renamed, a file added in its old place */
	    {"dir-rename", "git mv d e", "echo n >d/new.txt", true, false},
	    {"dir-rename-theirs", "echo n >d/new.txt", "git mv d e", true, false},
	    /* git: the same rename on both sides merges (the pick becomes empty) */
	    {"same-rename", "git mv a.txt b.txt && echo o >o.txt", "git mv a.txt b.txt", false,
	     true},
	    /* git: a directory deleted (not renamed) while a file is added in it */
	    {"dir-delete", "git rm -rq d", "echo n >d/new.txt", false, true},
	    /* git: a rename on one side only, the other side elsewhere */
	    {"rename-only", "echo o >o.txt", "git mv a.txt z.txt", false, true},
	};
	char script[2048], label[256];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kase k = {.name = cases[i].name};

		snprintf(
		    script, sizeof(script),
		    "seq 1 50 >a.txt && mkdir d && seq 100 150 >d/x.txt && "
		    "seq 200 250 >d/y.txt && ln -s a.txt link && printf 'bin\\0ary\\n' >b.bin && "
		    "git add . && cf README base base && git tag base && "
		    "git checkout -q -b feat && tick && %s && git add -A && "
		    "git commit -qm 'feat: op' && git checkout -q main && tick && %s && "
		    "git add -A && git commit -qm 'main: op'",
		    cases[i].feat_ops, cases[i].main_ops);
		snprintf(label, sizeof(label), "%s: repository built", k.name);
		ok(setup(k.name, script) == 0, label);
		run_case(&k, "base", "feat", "main", cases[i].check_paths);
		snprintf(label, sizeof(label), "%s: %s, as git", k.name,
			 cases[i].conflict ? "a conflict" : "merged");
		ok(k.res.conflicted == cases[i].conflict, label);
		kase_release(&k);
	}
}

/*
 * The branch merged trunk, and trunk then changed the same lines again:
 * `git rebase --onto` replays the merged trunk commit too (it is not in
 * base), which conflicts. So do we.
 */
static void test_merged_trunk(void)
{
	struct kase k = {.name = "merged-trunk"};

	ok(setup(k.name, "printf '%s\\n' a b c >f.txt && git add f.txt && cf README base base && "
			 "git tag base && git checkout -q -b feat && cf p.txt p 'feat: p' && "
			 "git checkout -q main && tick && sed -i s/a/A/ f.txt && "
			 "git commit -qam 'main: A' && git checkout -q feat && tick && "
			 "git merge -q --no-edit main -m 'merge main' && cf q.txt q 'feat: q' && "
			 "git checkout -q main && tick && sed -i s/A/AA/ f.txt && "
			 "git commit -qam 'main: AA'") == 0,
	   "merged-trunk: repository built");
	run_case(&k, "base", "feat", "main", true);
	ok(k.res.conflicted, "merged-trunk: the replayed trunk commit conflicts, as in git");
	kase_release(&k);
}

/* The branch merged an unrelated history: its root commit is replayed too, as git does. */
static void test_unrelated_root(void)
{
	struct kase k = {.name = "unrelated"};

	ok(setup(k.name,
		 "cf README base base && git tag base && git checkout -q --orphan other && "
		 "git rm -q -r -f . && cf o.txt o 'other: root' && cf o2.txt o2 'other: 2' && "
		 "git checkout -q -b feat base && cf p.txt p 'feat: p' && tick && "
		 "git merge -q --allow-unrelated-histories --no-edit other -m merge && "
		 "git checkout -q main && cf m.txt m 'main: m'") == 0,
	   "unrelated: repository built");
	run_case(&k, "base", "feat", "main", true);
	is_int(k.res.picked, 3, "unrelated: the root commit and its child replayed");
	kase_release(&k);
}

/*
 * A known, safe difference: trunk renamed a file the branch changes. git
 * follows the rename; without rename detection this is a modify/delete
 * conflict, so the branch is left alone rather than restacked wrongly.
 */
static void test_rename_followed_by_git(void)
{
	struct kase k = {.name = "rename-modify"};
	struct err e = {{0}, {0}};
	char path[256];
	git_oid base, head, onto;

	ok(setup(k.name,
		 "seq 1 50 >a.txt && git add a.txt && cf README base base && git tag base && "
		 "git checkout -q -b feat && tick && echo more >>a.txt && "
		 "git commit -qam 'feat: a' && git checkout -q main && tick && "
		 "git mv a.txt b.txt && git commit -qm 'main: rename' && "
		 "git clone -q --bare . ../bare.git && git checkout -q feat && "
		 "git rebase -q --onto main base feat") == 0,
	   "rename-modify: git follows the rename");
	snprintf(path, sizeof(path), "%s/%s/bare.git", dir, k.name);
	if (git_repository_open_bare(&k.bare, path) == 0 && resolve(k.bare, "base", &base) == 0 &&
	    resolve(k.bare, "feat", &head) == 0 && resolve(k.bare, "main", &onto) == 0) {
		k.rc = restack_branch(k.bare, &base, &head, &onto, bot, &k.res, &e);
		ok(k.rc == 0 && k.res.conflicted && k.res.conflict.npaths == 1 &&
		       strcmp(k.res.conflict.paths[0], "a.txt") == 0,
		   "rename-modify: we stop on a.txt instead (known difference, safe)");
	}
	kase_release(&k);
}

/* Files under objects/ that are not packs: the loose objects. */
static long loose_objects(const char *git_dir)
{
	char out[1][256];

	if (capture_lines(out, 1,
			  "find %s/objects -type f ! -path '*/pack/*' ! -path '*/info/*' | wc -l",
			  git_dir) != 1)
		return -1;
	return atol(out[0]);
}

/*
 * With the in-memory store attached, the same restack writes nothing to
 * disk until the flush, which writes one pack; a discard forgets it all.
 */
static void test_in_memory(void)
{
	_cleanup_(repositoryp) git_repository *repo = NULL;
	struct restack_result res = {0};
	struct err e = {{0}, {0}};
	git_oid base, head, onto;
	git_commit *c = NULL;
	size_t count = 0;
	char path[256];
	long before;

	ok(sh("cd clean && git clone -q --bare work mem.git && git clone -q --bare work "
	      "mem2.git") == 0,
	   "in-memory: two fresh mirrors");
	snprintf(path, sizeof(path), "%s/clean/mem.git", dir);
	if (!ok(git_repository_open_bare(&repo, path) == 0 && resolve(repo, "base", &base) == 0 &&
		    resolve(repo, "feat", &head) == 0 && resolve(repo, "main", &onto) == 0,
		"in-memory: mirror opens"))
		return;
	before = loose_objects(path);
	is_int(restack_odb_attach(repo, &e), 0, "in-memory: attach");
	is_int(restack_odb_attach(repo, &e), 0, "in-memory: attach twice is fine");
	is_int(restack_branch(repo, &base, &head, &onto, bot, &res, &e), 0, "in-memory: restack");
	ok(git_oid_equal(&res.new_tip, &clean_tip), "in-memory: the same commits as on disk");
	ok(git_commit_lookup(&c, repo, &res.new_tip) == 0, "in-memory: readable before the flush");
	git_commit_free(c);
	is_int(loose_objects(path), before, "in-memory: nothing written to disk yet");
	is_int(restack_odb_flush(repo, &count, &e), 0, "in-memory: flush");
	ok(count >= 10, "in-memory: the new commits, trees and blob flushed");
	is_int(loose_objects(path), before, "in-memory: as a pack, not loose objects");
	ok(sh("cd clean && git --git-dir=mem.git cat-file -e %s^{tree}",
	      git_oid_tostr_s(&res.new_tip)) == 0,
	   "in-memory: git reads the flushed commit");
	is_int(restack_odb_flush(repo, &count, &e), 0, "in-memory: a second flush");
	is_int(count, 0, "in-memory: has nothing left to write");
	restack_result_release(&res);
	git_repository_free(TAKE_PTR(repo));

	snprintf(path, sizeof(path), "%s/clean/mem2.git", dir);
	if (!ok(git_repository_open_bare(&repo, path) == 0, "in-memory: second mirror opens"))
		return;
	before = loose_objects(path);
	ok(restack_odb_attach(repo, &e) == 0 &&
	       restack_branch(repo, &base, &head, &onto, bot, &res, &e) == 0 &&
	       restack_odb_discard(repo, &e) == 0,
	   "in-memory: restack, then discard");
	is_int(git_commit_lookup(&c, repo, &res.new_tip), GIT_ENOTFOUND,
	       "in-memory: discarded commits are gone");
	is_int(loose_objects(path), before, "in-memory: and never reached the disk");
	restack_result_release(&res);
}

/* Bad input: a head that is not in the repository. */
static void test_errors(void)
{
	_cleanup_(repositoryp) git_repository *repo = NULL;
	struct restack_result res = {.picked = 42};
	struct err e = {{0}, {0}};
	char path[256];
	git_oid missing, main_id;

	snprintf(path, sizeof(path), "%s/clean/bare.git", dir);
	if (git_repository_open_bare(&repo, path) < 0 || resolve(repo, "main", &main_id) < 0) {
		ok(0, "errors: the clean case's mirror opens");
		return;
	}
	git_oid_fromstr(&missing, "0123456789012345678901234567890123456789");
	is_int(restack_branch(repo, &main_id, &missing, &main_id, bot, &res, &e), -ENOENT,
	       "errors: a missing head is -ENOENT");
	is_str(e.code, "not_found", "errors: code not_found");
	is_int(res.picked, 42, "errors: the result is untouched on failure");
}

int main(void)
{
	char rm[128];

	snprintf(dir, sizeof(dir), "/tmp/test-restack.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* The git CLI and libgit2 must not read the machine's or the user's configuration. */
	setenv("HOME", dir, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_AUTHOR_NAME", "Test Author", 1);
	setenv("GIT_AUTHOR_EMAIL", "author@example.org", 1);
	setenv("GIT_AUTHOR_DATE", "1700000000 +0000", 1);
	setenv("GIT_COMMITTER_NAME", "Test Committer", 1);
	setenv("GIT_COMMITTER_EMAIL", "committer@example.org", 1);
	setenv("GIT_COMMITTER_DATE", "1700000000 +0000", 1);

	git_libgit2_init();
	if (git_signature_new(&bot, "repoflow", "repoflow@example.org", 1800000000, 60) < 0) {
		printf("Bail out! git_signature_new\n");
		return 1;
	}
	test_clean();
	test_conflict();
	test_modify_delete();
	test_already_applied();
	test_applied_then_changed();
	test_empty();
	test_merges();
	test_healing();
	test_onto_ancestor();
	test_merge_kinds();
	test_merged_trunk();
	test_unrelated_root();
	test_rename_followed_by_git();
	test_in_memory();
	test_errors();
	git_signature_free(bot);
	git_libgit2_shutdown();

	if (tap_failed == 0 && getenv("KEEP") == NULL) {
		snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
		if (system(rm) != 0)
			printf("# could not remove %s\n", dir);
	} else {
		printf("# kept %s for a look (log: %s/log)\n", dir, dir);
	}
	return tap_done();
}
