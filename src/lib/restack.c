/*
 * restack.c - the restack engine: replay a branch's own commits onto a new
 * base, in memory, with the result `git rebase --onto` gives.
 *
 * What git 2.39 does, checked against the CLI (tests/unit/test-restack.c
 * runs the same cases through `git rebase --onto` and compares):
 *
 *  - The commits are `git rev-list --reverse --topo-order --no-merges
 *    base..head`. --topo-order is git's "graph order": a LIFO walk from the
 *    tip that emits a commit once all its children are out, pushing the
 *    parents of a merge in order, so the last parent's side comes out
 *    first; reversed, the first-parent side is replayed before the others.
 *    libgit2's topological sort does not promise that order, so
 *    order_commits() does git's walk itself.
 *  - With --onto, git's patch-id filter (--cherry-pick) compares only with
 *    the commits of `base` that are not in head: none, for a base that is
 *    an ancestor. A commit already applied on the new base is dropped
 *    because its pick comes out empty ("patch contents already upstream");
 *    when the new base has changed those lines further, git stops on a
 *    conflict, and so do we.
 *  - A pick whose tree equals its new parent's is dropped; a commit that
 *    was empty to begin with is kept.
 *  - The message loses its leading blank lines and is re-encoded to UTF-8
 *    when its encoding header says otherwise (git's sequencer reads it
 *    through logmsg_reencode and writes no encoding header); author line
 *    kept, committer the caller's.
 *
 * Why not git_merge_trees (or git_cherrypick_commit) on whole trees: it
 * walks every entry of all three trees for each pick, whatever changed,
 * and then git_index_write_tree hashes every directory again. On a
 * 10,000-file repository that is most of the time of a restack. A pick
 * only changes what the commit itself changed, so merge_dir() walks the
 * commit's own difference (parent tree against commit tree) directory by
 * directory, takes whole subtrees wherever one side left them alone (as
 * git's ort and git-branchless do), and only descends where both sides
 * changed the same directory. Files changed on both sides are merged with
 * git_merge_file_from_index (the same xdiff merge git_merge_trees uses);
 * anything stranger at one name (a directory against a file, a deletion
 * against a change, symlinks, submodules) is handed to git_merge_trees on
 * trees holding that one name, so libgit2 decides it as it would in a
 * whole-tree merge. Without rename detection, a merge is independent
 * name by name, which is what makes this exact.
 *
 * Renames. git's ort detects renames; we do not (it would mean diffing
 * the whole trunk delta on every pick). Most of the time that changes
 * nothing or turns a pick git would merge into a conflict (a file renamed
 * on one side and changed on the other): a conflict changes nothing on
 * the remote, which the workflows allow. Two patterns would instead merge
 * cleanly here where git stops, both verified with git 2.39:
 *   - a path deleted on both sides that one side renamed (rename/delete,
 *     rename/rename to different names);
 *   - a directory one side removed while renaming its files away, where
 *     the other side added files (git's directory rename detection).
 * Both need a path of the base that a side no longer has: a directory one
 * side removed, or paths both sides lost (also inside a directory both
 * sides changed alike, which merges without a look inside). Such names
 * are noted as suspects while merging, and only then (rarely) are the two
 * sides diffed with rename detection (check_renames()) and the pick
 * reported as a conflict where git would stop. Renames both sides made
 * alike merge cleanly, as in git. A random comparison with git 2.39 (2,000
 * repositories, one to four commits a side, renames included) found no
 * case where we merge and git stops, or both merge to different trees.
 *
 * Not honoured: .gitattributes merge drivers (a bare repository has no
 * checked-out attributes; git reads them from the worktree).
 *
 * Library code: it never logs; errors come back as negative errno with
 * libgit2's text in the struct err.
 */
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include <git2.h>
#include <git2/sys/commit.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "restack.h"

/* --- ownership helpers ---------------------------------------------------- */

static void commitp(git_commit **p)
{
	git_commit_free(*p);
}

static void treep(git_tree **p)
{
	git_tree_free(*p);
}

static void treebuilderp(git_treebuilder **p)
{
	git_treebuilder_free(*p);
}

static void indexp(git_index **p)
{
	git_index_free(*p);
}

static void index_conflict_iteratorp(git_index_conflict_iterator **p)
{
	git_index_conflict_iterator_free(*p);
}

static void revwalkp(git_revwalk **p)
{
	git_revwalk_free(*p);
}

static void diffp(git_diff **p)
{
	git_diff_free(*p);
}

static void tree_entryp(git_tree_entry **p)
{
	git_tree_entry_free(*p);
}

static void merge_file_resultp(git_merge_file_result *p)
{
	git_merge_file_result_free(p);
}

/*
 * Turn the libgit2 failure `gr` of `what` into a negative errno, with
 * git_error_last()'s text (copied now: the next call overwrites it).
 */
static int git_fail(int gr, const char *what, struct err *e)
{
	const git_error *ge = git_error_last();
	const char *msg = ge != NULL && ge->message != NULL ? ge->message : "unknown libgit2 error";

	if (ge != NULL && ge->klass == GIT_ERROR_NOMEMORY)
		return err_set(e, -ENOMEM, "git_error", "restack: %s: out of memory", what);
	if (gr == GIT_ENOTFOUND)
		return err_set(e, -ENOENT, "not_found", "restack: %s: %s", what, msg);
	return err_set(e, -EIO, "git_error", "restack: %s: %s", what, msg);
}

/* --- a list of owned strings ------------------------------------------------ */

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_release(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv){NULL, 0, 0};
}

/* Append the concatenation of the first `plen` bytes of prefix and rest. */
static int strv_push(struct strv *s, const char *prefix, size_t plen, const char *rest)
{
	size_t rlen = strlen(rest);
	char *str;

	if (s->n == s->cap) {
		size_t cap = s->cap != 0 ? s->cap * 2 : 8;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	str = malloc(plen + rlen + 1);
	if (str == NULL)
		return -ENOMEM;
	memcpy(str, prefix, plen);
	memcpy(str + plen, rest, rlen + 1);
	s->v[s->n++] = str;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_sort_uniq(struct strv *s)
{
	size_t k = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), str_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i], s->v[k]) == 0)
			free(s->v[i]);
		else
			s->v[++k] = s->v[i];
	}
	s->n = k + 1;
}

void restack_result_release(struct restack_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->conflict.npaths; i++)
		free(r->conflict.paths[i]);
	free(r->conflict.paths);
	*r = (struct restack_result){0};
}

/* --- one name in three trees ---------------------------------------------- */

/* A tree entry as the merge sees it: absent, or an object with a mode. */
struct ent {
	bool present;
	git_filemode_t mode;
	git_oid id;
};

static struct ent ent_of(const git_tree_entry *te)
{
	struct ent en = {false, 0, {{0}}};

	if (te != NULL) {
		en.present = true;
		en.mode = git_tree_entry_filemode(te);
		git_oid_cpy(&en.id, git_tree_entry_id(te));
	}
	return en;
}

static bool ent_eq(const struct ent *a, const struct ent *b)
{
	if (!a->present || !b->present)
		return a->present == b->present;
	return a->mode == b->mode && git_oid_equal(&a->id, &b->id);
}

static bool ent_is_tree(const struct ent *en)
{
	return en->present && en->mode == GIT_FILEMODE_TREE;
}

static bool ent_is_file(const struct ent *en)
{
	return en->present &&
	       (en->mode == GIT_FILEMODE_BLOB || en->mode == GIT_FILEMODE_BLOB_EXECUTABLE);
}

/* --- one pick ------------------------------------------------------------- */

/* The state of one three-way merge of trees (one commit picked onto the new tip). */
struct pick {
	git_repository *repo;
	struct buf path;       /* the directory being merged: "" or "a/b/" */
	struct strv conflicts; /* conflicting paths, in discovery order */
	struct strv suspects;  /* names where renames could change git's answer */
	git_merge_options merge_opts;
	git_merge_file_options file_opts;
	struct err *e;
};

static int pick_init(struct pick *p, git_repository *repo, struct err *e)
{
	int gr;

	*p = (struct pick){.repo = repo, .path = BUF_INIT, .e = e};
	gr = git_merge_options_init(&p->merge_opts, GIT_MERGE_OPTIONS_VERSION);
	if (gr == 0)
		gr = git_merge_file_options_init(&p->file_opts, GIT_MERGE_FILE_OPTIONS_VERSION);
	if (gr < 0)
		return git_fail(gr, "merge options", e);
	/* No rename detection (see the top of the file); no REUC, nobody reads it. */
	p->merge_opts.flags = GIT_MERGE_SKIP_REUC;
	return buf_puts(&p->path, "");
}

static void pick_release(struct pick *p)
{
	buf_release(&p->path);
	strv_release(&p->conflicts);
	strv_release(&p->suspects);
}

/* Cut the path back to `len` bytes. */
static void path_truncate(struct pick *p, size_t len)
{
	p->path.len = len;
	p->path.data[len] = '\0';
}

/*
 * Record `res` as the merged entry `name` of the directory whose `ours`
 * version is o (eo its entry there): nothing when it is ours already, else
 * in the builder, made from o on the first change.
 */
static int result_set(struct pick *p, git_treebuilder **bld, const git_tree *o, const char *name,
		      const struct ent *eo, const struct ent *res)
{
	int gr;

	if (ent_eq(eo, res))
		return 0;
	if (*bld == NULL) {
		gr = git_treebuilder_new(bld, p->repo, o);
		if (gr < 0)
			return git_fail(gr, "tree builder", p->e);
	}
	if (res->present)
		gr = git_treebuilder_insert(NULL, *bld, name, &res->id, res->mode);
	else
		gr = git_treebuilder_remove(*bld, name);
	if (gr < 0)
		return git_fail(gr, "build tree", p->e);
	return 0;
}

/*
 * A file changed on both sides (or added on both): the xdiff merge
 * git_merge_trees would run for it. p->path is the file's path. Sets *res,
 * or records a conflict.
 */
static int merge_file(struct pick *p, const struct ent *eb, const struct ent *eo,
		      const struct ent *et, struct ent *res)
{
	_cleanup_(merge_file_resultp) git_merge_file_result mr = {0};
	git_index_entry ib, io, it;
	int gr;

	memset(&ib, 0, sizeof(ib));
	ib.path = p->path.data;
	io = it = ib;
	ib.mode = eb->mode;
	ib.id = eb->id;
	io.mode = eo->mode;
	io.id = eo->id;
	it.mode = et->mode;
	it.id = et->id;
	gr = git_merge_file_from_index(&mr, p->repo, eb->present ? &ib : NULL, &io, &it,
				       &p->file_opts);
	if (gr < 0)
		return git_fail(gr, "merge file", p->e);
	if (!mr.automergeable)
		return strv_push(&p->conflicts, p->path.data, p->path.len, "");
	gr = git_blob_create_from_buffer(&res->id, p->repo, mr.ptr, mr.len);
	if (gr < 0)
		return git_fail(gr, "write merged file", p->e);
	res->present = true;
	res->mode = mr.mode != 0 ? (git_filemode_t)mr.mode : eo->mode;
	return 0;
}

/* A tree holding at most one entry, `name` -> en: what merge_fallback merges. */
static int single_entry_tree(struct pick *p, const char *name, const struct ent *en, git_tree **ret)
{
	_cleanup_(treebuilderp) git_treebuilder *bld = NULL;
	git_oid id;
	int gr;

	gr = git_treebuilder_new(&bld, p->repo, NULL);
	if (gr == 0 && en->present)
		gr = git_treebuilder_insert(NULL, bld, name, &en->id, en->mode);
	if (gr == 0)
		gr = git_treebuilder_write(&id, bld);
	if (gr == 0)
		gr = git_tree_lookup(ret, p->repo, &id);
	if (gr < 0)
		return git_fail(gr, "single-entry tree", p->e);
	return 0;
}

/*
 * Anything at one name that is not a plain file merge or a directory on
 * both sides: let git_merge_trees decide it, on trees holding only that
 * name (a merge without renames does not look across names). `dirlen` is
 * the length of the containing directory's path in p->path. Sets *res or
 * records the conflicting paths.
 */
static int merge_fallback(struct pick *p, size_t dirlen, const char *name, const struct ent *eb,
			  const struct ent *eo, const struct ent *et, struct ent *res)
{
	_cleanup_(treep) git_tree *tb = NULL, *to = NULL, *tt = NULL, *merged = NULL;
	_cleanup_(indexp) git_index *idx = NULL;
	git_oid id;
	int gr, r;

	if ((r = single_entry_tree(p, name, eb, &tb)) < 0 ||
	    (r = single_entry_tree(p, name, eo, &to)) < 0 ||
	    (r = single_entry_tree(p, name, et, &tt)) < 0)
		return r;
	gr = git_merge_trees(&idx, p->repo, tb, to, tt, &p->merge_opts);
	if (gr < 0)
		return git_fail(gr, "merge trees", p->e);
	if (git_index_has_conflicts(idx)) {
		_cleanup_(index_conflict_iteratorp) git_index_conflict_iterator *it = NULL;
		const git_index_entry *a, *o, *t;

		gr = git_index_conflict_iterator_new(&it, idx);
		if (gr < 0)
			return git_fail(gr, "conflict iterator", p->e);
		while ((gr = git_index_conflict_next(&a, &o, &t, it)) == 0) {
			const git_index_entry *any = a != NULL ? a : o != NULL ? o : t;

			r = strv_push(&p->conflicts, p->path.data, dirlen, any->path);
			if (r < 0)
				return r;
		}
		if (gr != GIT_ITEROVER)
			return git_fail(gr, "conflict iterator", p->e);
		return 0;
	}
	gr = git_index_write_tree_to(&id, idx, p->repo);
	if (gr == 0)
		gr = git_tree_lookup(&merged, p->repo, &id);
	if (gr < 0)
		return git_fail(gr, "write merged tree", p->e);
	*res = ent_of(git_tree_entry_byname(merged, name));
	return 0;
}

static int merge_dir(struct pick *p, const git_oid *b, const git_oid *o, const git_oid *t,
		     git_oid *ret_id, bool *ret_present);

/*
 * 1 when something under the base entry eb is gone in x (a file deleted, a
 * directory removed, one replaced by the other), else 0; or a negative
 * errno. Only directories that differ are read.
 */
static int lost_paths(struct pick *p, const struct ent *eb, const struct ent *x)
{
	_cleanup_(treep) git_tree *tb = NULL, *tx = NULL;
	size_t n;
	int gr;

	if (!eb->present || ent_eq(eb, x))
		return 0;
	if (!x->present || ent_is_tree(eb) != ent_is_tree(x))
		return 1;
	if (!ent_is_tree(eb))
		return 0; /* a file changed in place */
	gr = git_tree_lookup(&tb, p->repo, &eb->id);
	if (gr == 0)
		gr = git_tree_lookup(&tx, p->repo, &x->id);
	if (gr < 0)
		return git_fail(gr, "read tree", p->e);
	n = git_tree_entrycount(tb);
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tb, i);
		struct ent b = ent_of(te),
			   xe = ent_of(git_tree_entry_byname(tx, git_tree_entry_name(te)));
		int r = lost_paths(p, &b, &xe);

		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * Merge the name `name` of a directory (o its ours tree) where the base and
 * theirs differ: eb, eo, et are its entries. p->path holds the directory's
 * path; it is restored on return.
 */
static int merge_entry(struct pick *p, git_treebuilder **bld, const git_tree *o, const char *name,
		       const struct ent *eb, const struct ent *et)
{
	struct ent eo = ent_of(git_tree_entry_byname(o, name));
	struct ent res = eo;
	size_t dirlen = p->path.len;
	int r;

	/* Ours left it alone: theirs wins. Same on both sides: done. */
	if (ent_eq(&eo, eb))
		return result_set(p, bld, o, name, &eo, et);
	r = buf_puts(&p->path, name);
	if (r < 0)
		return r;
	if (ent_eq(&eo, et)) {
		/*
		 * The same change on both sides: clean, unless it lost paths that one
		 * side renamed elsewhere (and the other deleted).
		 */
		r = lost_paths(p, eb, &eo);
		if (r > 0)
			r = strv_push(&p->suspects, p->path.data, p->path.len, "");
	} else if (ent_is_tree(&eo) && ent_is_tree(et) && (!eb->present || ent_is_tree(eb))) {
		bool present = false;
		git_oid id = {{0}};

		r = buf_puts(&p->path, "/");
		if (r == 0)
			r = merge_dir(p, eb->present ? &eb->id : NULL, &eo.id, &et->id, &id,
				      &present);
		res = (struct ent){present, GIT_FILEMODE_TREE, id};
	} else if (ent_is_file(&eo) && ent_is_file(et) && (!eb->present || ent_is_file(eb))) {
		r = merge_file(p, eb, &eo, et, &res);
	} else {
		/* A directory one side removed may be a directory the other side renamed. */
		if (ent_is_tree(eb) && (!eo.present || !et->present))
			r = strv_push(&p->suspects, p->path.data, p->path.len, "");
		if (r == 0)
			r = merge_fallback(p, dirlen, name, eb, &eo, et, &res);
	}
	path_truncate(p, dirlen);
	if (r < 0)
		return r;
	if (p->conflicts.n > 0)
		return 0; /* the result is thrown away; keep looking for conflicting paths */
	return result_set(p, bld, o, name, &eo, &res);
}

/*
 * Three-way merge of one directory: b (NULL when the base has none), o
 * and t are tree ids. Only names where theirs differs from the base can
 * differ from ours in the result, so those are the only ones visited.
 * *ret_id and *ret_present give the merged directory (absent when it ended
 * up empty); meaningless once p->conflicts is not empty.
 */
static int merge_dir(struct pick *p, const git_oid *b, const git_oid *o, const git_oid *t,
		     git_oid *ret_id, bool *ret_present)
{
	_cleanup_(treep) git_tree *tb = NULL, *to = NULL, *tt = NULL;
	_cleanup_(treebuilderp) git_treebuilder *bld = NULL;
	size_t nb, nt;
	int gr, r;

	*ret_present = true;
	if (git_oid_equal(o, t) || (b != NULL && git_oid_equal(b, t))) {
		git_oid_cpy(ret_id, o);
		return 0;
	}
	if (b != NULL && git_oid_equal(b, o)) {
		git_oid_cpy(ret_id, t);
		return 0;
	}
	gr = b != NULL ? git_tree_lookup(&tb, p->repo, b) : 0;
	if (gr == 0)
		gr = git_tree_lookup(&to, p->repo, o);
	if (gr == 0)
		gr = git_tree_lookup(&tt, p->repo, t);
	if (gr < 0)
		return git_fail(gr, "read tree", p->e);

	nb = tb != NULL ? git_tree_entrycount(tb) : 0;
	nt = git_tree_entrycount(tt);
	/* Names in the base that theirs changed or removed... */
	for (size_t i = 0; i < nb; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tb, i);
		const char *name = git_tree_entry_name(te);
		struct ent eb = ent_of(te), et = ent_of(git_tree_entry_byname(tt, name));

		if (ent_eq(&eb, &et))
			continue;
		r = merge_entry(p, &bld, to, name, &eb, &et);
		if (r < 0)
			return r;
	}
	/* ...and names theirs added. */
	for (size_t i = 0; i < nt; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tt, i);
		const char *name = git_tree_entry_name(te);
		struct ent eb = {false, 0, {{0}}}, et = ent_of(te);

		if (tb != NULL && git_tree_entry_byname(tb, name) != NULL)
			continue;
		r = merge_entry(p, &bld, to, name, &eb, &et);
		if (r < 0)
			return r;
	}

	if (bld == NULL || p->conflicts.n > 0) {
		git_oid_cpy(ret_id, o);
		return 0;
	}
	if (git_treebuilder_entrycount(bld) == 0) {
		*ret_present = false; /* git keeps no empty directories */
		return 0;
	}
	gr = git_treebuilder_write(ret_id, bld);
	if (gr < 0)
		return git_fail(gr, "write tree", p->e);
	return 0;
}

/* --- the rename guard ------------------------------------------------------ */

/* True when path is prefix or lies below it. */
static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool path_exists(git_tree *tree, const char *path)
{
	_cleanup_(tree_entryp) git_tree_entry *te = NULL;

	return tree != NULL && git_tree_entry_bypath(&te, tree, path) == 0;
}

/* Where one side renamed src to, or NULL. */
static const char *renamed_to(git_diff *d, const char *src)
{
	size_t n = git_diff_num_deltas(d);

	for (size_t i = 0; i < n; i++) {
		const git_diff_delta *dd = git_diff_get_delta(d, i);

		if (dd->status == GIT_DELTA_RENAMED && strcmp(dd->old_file.path, src) == 0)
			return dd->new_file.path;
	}
	return NULL;
}

/* The changes from base to side, with renames found as git finds them (50%, limit 7000). */
static int side_diff(struct pick *p, git_tree *base, git_tree *side, git_diff **ret)
{
	_cleanup_(diffp) git_diff *d = NULL;
	git_diff_find_options fo;
	int gr;

	gr = git_diff_tree_to_tree(&d, p->repo, base, side, NULL);
	if (gr == 0)
		gr = git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
	if (gr == 0) {
		fo.flags = GIT_DIFF_FIND_RENAMES;
		fo.rename_threshold = 50;
		fo.rename_limit = 7000;
		gr = git_diff_find_similar(d, &fo);
	}
	if (gr < 0)
		return git_fail(gr, "find renames", p->e);
	*ret = TAKE_PTR(d);
	return 0;
}

/*
 * For each suspect name, say whether git's rename detection would have
 * stopped the pick, and record those conflicts. rb, ro, rt are the root
 * trees of base, ours and theirs (rb NULL for a root commit). For a
 * rename src -> dst on one side X, with src under a suspect:
 *  - src is gone on the other side Y too, and Y did not rename it to the
 *    same dst: rename/delete or rename/rename, a conflict at src;
 *  - X removed the whole suspect directory while renaming files out of
 *    it, and Y added files in it: git's directory rename detection
 *    stops there, a conflict at each added path.
 */
static int check_renames(struct pick *p, git_tree *rb, git_tree *ro, git_tree *rt)
{
	_cleanup_(diffp) git_diff *dours = NULL, *dtheirs = NULL;
	git_diff *d[2];
	git_tree *side[2] = {ro, rt};
	int r;

	if ((r = side_diff(p, rb, ro, &dours)) < 0 || (r = side_diff(p, rb, rt, &dtheirs)) < 0)
		return r;
	d[0] = dours;
	d[1] = dtheirs;
	for (size_t s = 0; s < p->suspects.n; s++) {
		const char *sus = p->suspects.v[s];

		for (int x = 0; x < 2; x++) {
			int y = 1 - x;
			bool x_removed = !path_exists(side[x], sus);
			size_t n = git_diff_num_deltas(d[x]);

			for (size_t i = 0; i < n; i++) {
				const git_diff_delta *dd = git_diff_get_delta(d[x], i);
				const char *other;

				if (dd->status != GIT_DELTA_RENAMED ||
				    !path_under(dd->old_file.path, sus))
					continue;
				other = renamed_to(d[y], dd->old_file.path);
				if (!path_exists(side[y], dd->old_file.path) &&
				    (other == NULL || strcmp(other, dd->new_file.path) != 0)) {
					r = strv_push(&p->conflicts, "", 0, dd->old_file.path);
					if (r < 0)
						return r;
				}
				if (!x_removed)
					continue;
				for (size_t j = 0; j < git_diff_num_deltas(d[y]); j++) {
					const git_diff_delta *dy = git_diff_get_delta(d[y], j);

					if ((dy->status == GIT_DELTA_ADDED ||
					     dy->status == GIT_DELTA_RENAMED) &&
					    path_under(dy->new_file.path, sus) &&
					    (r = strv_push(&p->conflicts, "", 0,
							   dy->new_file.path)) < 0)
						return r;
				}
			}
		}
	}
	return 0;
}

/* --- which commits, in which order ----------------------------------------- */

struct node {
	git_oid id;
	git_commit *commit;
	unsigned indegree;
};

struct nodes {
	struct node *v;
	size_t n;
	size_t *order; /* indices into v, oldest first (merges included) */
};

static void nodes_release(struct nodes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		git_commit_free(ns->v[i].commit);
	free(ns->v);
	free(ns->order);
	*ns = (struct nodes){NULL, 0, NULL};
}

static int node_cmp(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct node *)a)->id, &((const struct node *)b)->id);
}

static struct node *node_find(struct nodes *ns, const git_oid *id)
{
	struct node key;

	git_oid_cpy(&key.id, id);
	return bsearch(&key, ns->v, ns->n, sizeof(*ns->v), node_cmp);
}

/* The commits of base..head, loaded, sorted by id for node_find. */
static int collect_commits(git_repository *repo, const git_oid *base, const git_oid *head,
			   struct nodes *ns, struct err *e)
{
	_cleanup_(revwalkp) git_revwalk *walk = NULL;
	size_t cap = 0;
	git_oid id;
	int gr;

	gr = git_revwalk_new(&walk, repo);
	if (gr == 0)
		gr = git_revwalk_push(walk, head);
	if (gr == 0)
		gr = git_revwalk_hide(walk, base);
	if (gr < 0)
		return git_fail(gr, "walk base..head", e);
	while ((gr = git_revwalk_next(&id, walk)) == 0) {
		if (ns->n == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			struct node *v = realloc(ns->v, ncap * sizeof(*v));

			if (v == NULL)
				return -ENOMEM;
			ns->v = v;
			cap = ncap;
		}
		ns->v[ns->n] = (struct node){id, NULL, 0};
		ns->n++;
	}
	if (gr != GIT_ITEROVER)
		return git_fail(gr, "walk base..head", e);
	qsort(ns->v, ns->n, sizeof(*ns->v), node_cmp);
	for (size_t i = 0; i < ns->n; i++) {
		gr = git_commit_lookup(&ns->v[i].commit, repo, &ns->v[i].id);
		if (gr < 0)
			return git_fail(gr, "read commit", e);
	}
	return 0;
}

/*
 * git's --topo-order (REV_SORT_IN_GRAPH_ORDER, sort_in_topological_order in
 * commit.c), reversed: indegree is 1 + the number of children in the set;
 * a LIFO stack starts at the tip; a commit is emitted when popped, and
 * each parent whose count falls back to 1 is pushed, in parent order.
 */
static int order_commits(struct nodes *ns, const git_oid *head)
{
	_cleanup_free_ size_t *stack = NULL;
	size_t sp = 0, k = 0;
	struct node *tip;

	if (ns->n == 0)
		return 0;
	stack = malloc(ns->n * sizeof(*stack));
	ns->order = malloc(ns->n * sizeof(*ns->order));
	if (stack == NULL || ns->order == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < ns->n; i++)
		ns->v[i].indegree = 1;
	for (size_t i = 0; i < ns->n; i++) {
		unsigned np = git_commit_parentcount(ns->v[i].commit);

		for (unsigned j = 0; j < np; j++) {
			struct node *pn = node_find(ns, git_commit_parent_id(ns->v[i].commit, j));

			if (pn != NULL)
				pn->indegree++;
		}
	}
	/* Every commit of base..head is reached from head through the set: one tip. */
	tip = node_find(ns, head);
	if (tip == NULL || tip->indegree != 1)
		return -EIO;
	stack[sp++] = (size_t)(tip - ns->v);
	while (sp > 0) {
		struct node *c = &ns->v[stack[--sp]];
		unsigned np = git_commit_parentcount(c->commit);

		for (unsigned j = 0; j < np; j++) {
			struct node *pn = node_find(ns, git_commit_parent_id(c->commit, j));

			if (pn == NULL || pn->indegree == 0)
				continue;
			if (--pn->indegree == 1)
				stack[sp++] = (size_t)(pn - ns->v);
		}
		c->indegree = 0;
		ns->order[k++] = (size_t)(c - ns->v);
	}
	if (k != ns->n)
		return -EIO;
	for (size_t i = 0; i < k / 2; i++) {
		size_t tmp = ns->order[i];

		ns->order[i] = ns->order[k - 1 - i];
		ns->order[k - 1 - i] = tmp;
	}
	return 0;
}

/* --- the message ----------------------------------------------------------- */

static bool encoding_is_utf8(const char *enc)
{
	return strcasecmp(enc, "utf-8") == 0 || strcasecmp(enc, "utf8") == 0;
}

/*
 * The message as git's sequencer writes it for a pick: git_commit_message()
 * (leading blank lines already removed, as git does), re-encoded to UTF-8
 * when the commit names another encoding. git keeps the bytes as they are
 * when it cannot convert them, and so do we. *ret is a new string to free,
 * or NULL when the message is to be used as it is.
 */
static int message_utf8(const git_commit *c, char **ret)
{
	const char *enc = git_commit_message_encoding(c);
	const char *msg = git_commit_message(c);
	_cleanup_free_ char *out = NULL;
	size_t inleft, outleft, cap;
	char *in, *op;
	iconv_t cd;

	*ret = NULL;
	if (enc == NULL || encoding_is_utf8(enc) || msg == NULL)
		return 0;
	cd = iconv_open("UTF-8", enc);
	if (cd == (iconv_t)-1)
		return 0;
	inleft = strlen(msg);
	cap = inleft * 2 + 16;
	out = malloc(cap);
	if (out == NULL) {
		iconv_close(cd);
		return -ENOMEM;
	}
	in = (char *)msg;
	op = out;
	outleft = cap - 1;
	while (inleft > 0) {
		if (iconv(cd, &in, &inleft, &op, &outleft) != (size_t)-1)
			continue;
		if (errno == E2BIG) {
			size_t used = (size_t)(op - out);
			char *n = realloc(out, cap * 2);

			if (n == NULL) {
				iconv_close(cd);
				return -ENOMEM;
			}
			out = n;
			op = out + used;
			outleft += cap;
			cap *= 2;
			continue;
		}
		iconv_close(cd);
		return 0; /* not convertible: keep the original bytes */
	}
	iconv_close(cd);
	*op = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* --- the replay ------------------------------------------------------------ */

/* The tree of a commit's first parent, or NULL for a root commit. */
static int parent_tree_id(git_repository *repo, const git_commit *c, git_oid *ret, bool *ret_root,
			  struct err *e)
{
	_cleanup_(commitp) git_commit *parent = NULL;
	int gr;

	if (git_commit_parentcount(c) == 0) {
		*ret_root = true;
		return 0;
	}
	gr = git_commit_parent(&parent, c, 0);
	if (gr < 0)
		return git_fail(gr, "read parent commit", e);
	git_oid_cpy(ret, git_commit_tree_id(parent));
	*ret_root = false;
	return 0;
}

/* Load three root trees for check_renames (base NULL for a root commit). */
static int check_pick_renames(struct pick *p, const git_oid *b, const git_oid *o, const git_oid *t)
{
	_cleanup_(treep) git_tree *rb = NULL, *ro = NULL, *rt = NULL;
	int gr;

	gr = b != NULL ? git_tree_lookup(&rb, p->repo, b) : 0;
	if (gr == 0)
		gr = git_tree_lookup(&ro, p->repo, o);
	if (gr == 0)
		gr = git_tree_lookup(&rt, p->repo, t);
	if (gr < 0)
		return git_fail(gr, "read tree", p->e);
	return check_renames(p, rb, ro, rt);
}

/*
 * Pick commit c onto the tree tip_tree: merge its change in. On a clean
 * merge, *ret_tree is the merged tree; on a conflict, p->conflicts is not
 * empty. *ret_was_empty says the commit changed nothing to begin with.
 */
static int pick_tree(struct pick *p, const git_commit *c, const git_oid *tip_tree,
		     git_oid *ret_tree, bool *ret_was_empty)
{
	const git_oid *t = git_commit_tree_id(c);
	git_oid b, merged;
	bool root = false, present = true;
	int r;

	r = parent_tree_id(p->repo, c, &b, &root, p->e);
	if (r < 0)
		return r;
	if (root) {
		/* git picks a root commit against the empty tree. */
		_cleanup_(treep) git_tree *tt = NULL;
		int gr = git_tree_lookup(&tt, p->repo, t);

		if (gr < 0)
			return git_fail(gr, "read tree", p->e);
		*ret_was_empty = git_tree_entrycount(tt) == 0;
	} else {
		*ret_was_empty = git_oid_equal(&b, t);
	}
	r = merge_dir(p, root ? NULL : &b, tip_tree, t, &merged, &present);
	if (r < 0)
		return r;
	if (p->conflicts.n == 0 && !present) {
		/* Everything was deleted: the root is the empty tree, not "absent". */
		_cleanup_(treebuilderp) git_treebuilder *bld = NULL;
		int gr = git_treebuilder_new(&bld, p->repo, NULL);

		if (gr == 0)
			gr = git_treebuilder_write(&merged, bld);
		if (gr < 0)
			return git_fail(gr, "write empty tree", p->e);
	}
	if (p->conflicts.n == 0 && p->suspects.n > 0) {
		r = check_pick_renames(p, root ? NULL : &b, tip_tree, t);
		if (r < 0)
			return r;
	}
	git_oid_cpy(ret_tree, &merged);
	return 0;
}

/* Write the replayed commit: c's author and message, tree, one parent. */
static int write_commit(git_repository *repo, const git_commit *c, const git_oid *tree,
			const git_oid *parent, const git_signature *committer, git_oid *ret,
			struct err *e)
{
	_cleanup_free_ char *converted = NULL;
	const git_oid *parents[1] = {parent};
	int gr, r;

	r = message_utf8(c, &converted);
	if (r < 0)
		return r;
	gr = git_commit_create_from_ids(ret, repo, NULL, git_commit_author(c), committer, NULL,
					converted != NULL ? converted : git_commit_message(c), tree,
					1, parents);
	if (gr < 0)
		return git_fail(gr, "write commit", e);
	return 0;
}

/* True when `ancestor` is `of` or one of its ancestors. */
static int is_ancestor(git_repository *repo, const git_oid *ancestor, const git_oid *of,
		       struct err *e)
{
	int gr;

	if (git_oid_equal(ancestor, of))
		return 1;
	gr = git_graph_descendant_of(repo, of, ancestor);
	if (gr < 0)
		return git_fail(gr, "ancestry", e);
	return gr;
}

/* Move a pick's conflict into the result. */
static void take_conflict(struct restack_result *res, struct pick *p, const git_oid *commit,
			  const git_oid *onto)
{
	strv_sort_uniq(&p->conflicts);
	res->conflicted = true;
	git_oid_cpy(&res->conflict.commit, commit);
	git_oid_cpy(&res->conflict.onto, onto);
	res->conflict.paths = TAKE_PTR(p->conflicts.v);
	res->conflict.npaths = p->conflicts.n;
	p->conflicts = (struct strv){NULL, 0, 0};
}

int restack_branch(git_repository *repo, const git_oid *base, const git_oid *head,
		   const git_oid *onto, const git_signature *committer, struct restack_result *ret,
		   struct err *e)
{
	_cleanup_(restack_result_release) struct restack_result res = {0};
	_cleanup_(nodes_release) struct nodes ns = {NULL, 0, NULL};
	_cleanup_(commitp) git_commit *head_commit = NULL, *onto_commit = NULL;
	struct err ae = {{0}, {0}};
	git_oid tip, tip_tree, from = *base;
	int gr, r;

	gr = git_commit_lookup(&head_commit, repo, head);
	if (gr < 0)
		return git_fail(gr, "read the branch head", e);
	gr = git_commit_lookup(&onto_commit, repo, onto);
	if (gr < 0)
		return git_fail(gr, "read the new base", e);
	git_oid_cpy(&res.new_base, onto);

	/* 1. The new base is already under the branch: nothing to replay. */
	r = is_ancestor(repo, onto, head, e);
	if (r < 0)
		return r;
	if (r == 1) {
		git_oid_cpy(&res.new_tip, head);
		*ret = res;
		res = (struct restack_result){0};
		return 0;
	}

	/* 2. A base the branch no longer contains (or one the mirror lost) is healed. */
	r = is_ancestor(repo, base, head, &ae);
	if (r == -ENOENT)
		r = 0;
	if (r < 0) {
		if (e != NULL)
			*e = ae;
		return r;
	}
	if (r == 0) {
		gr = git_merge_base(&from, repo, head, onto);
		if (gr < 0)
			return gr == GIT_ENOTFOUND
				   ? err_set(e, -ENOENT, "no_merge_base",
					     "restack: the branch and its new base share no "
					     "history")
				   : git_fail(gr, "merge base", e);
		res.base_healed = true;
		git_oid_cpy(&res.healed_base, &from);
	}

	/* 3. The commits, in git's order. */
	r = collect_commits(repo, &from, head, &ns, e);
	if (r < 0)
		return r;
	r = order_commits(&ns, head);
	if (r < 0)
		return err_set(e, r, "git_error",
			       "restack: cannot order the commits of the branch");

	/* 4. Pick them one by one onto the new base. */
	git_oid_cpy(&tip, onto);
	git_oid_cpy(&tip_tree, git_commit_tree_id(onto_commit));
	for (size_t i = 0; i < ns.n; i++) {
		const git_commit *c = ns.v[ns.order[i]].commit;
		_cleanup_(pick_release) struct pick p = {0};
		bool was_empty = false;
		git_oid tree;

		if (git_commit_parentcount(c) > 1) {
			res.skipped_merges++;
			continue;
		}
		r = pick_init(&p, repo, e);
		if (r == 0)
			r = pick_tree(&p, c, &tip_tree, &tree, &was_empty);
		if (r < 0)
			return r;
		if (p.conflicts.n > 0) {
			take_conflict(&res, &p, git_commit_id(c), &tip);
			*ret = res;
			res = (struct restack_result){0};
			return 0;
		}
		if (git_oid_equal(&tree, &tip_tree) && !was_empty) {
			res.dropped_empty++;
			continue;
		}
		r = write_commit(repo, c, &tree, &tip, committer, &tip, e);
		if (r < 0)
			return r;
		git_oid_cpy(&tip_tree, &tree);
		res.picked++;
		if (was_empty)
			res.kept_empty++;
	}
	git_oid_cpy(&res.new_tip, &tip);
	res.changed = !git_oid_equal(&tip, head);
	*ret = res;
	res = (struct restack_result){0};
	return 0;
}

/* --- new objects held in memory -------------------------------------------- */

/*
 * An object database backend in front of libgit2's mempack: mempack keeps
 * the objects (and serves reads), this wrapper remembers which ones were
 * written, because mempack cannot list them and its own dump packs each
 * commit's whole tree (every blob of the repository) instead of the new
 * objects only. libgit2 owns it once added to the odb, and frees it with
 * the odb (`free` below).
 */
struct mem_odb {
	git_odb_backend parent; /* first: libgit2 passes &parent around */
	git_odb_backend *inner; /* the mempack holding the objects */
	git_oid *ids;		/* written since the last flush, in order */
	size_t n, cap;
};

static int mem_read(void **ret, size_t *len, git_object_t *type, git_odb_backend *b,
		    const git_oid *id)
{
	git_odb_backend *in = ((struct mem_odb *)b)->inner;

	return in->read(ret, len, type, in, id);
}

static int mem_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
	git_odb_backend *in = ((struct mem_odb *)b)->inner;

	return in->read_header(len, type, in, id);
}

static int mem_exists(git_odb_backend *b, const git_oid *id)
{
	git_odb_backend *in = ((struct mem_odb *)b)->inner;

	return in->exists(in, id);
}

static int mem_write(git_odb_backend *b, const git_oid *id, const void *data, size_t len,
		     git_object_t type)
{
	struct mem_odb *m = (struct mem_odb *)b;
	int gr;

	if (m->n == m->cap) {
		size_t cap = m->cap != 0 ? m->cap * 2 : 256;
		git_oid *ids = realloc(m->ids, cap * sizeof(*ids));

		if (ids == NULL) {
			git_error_set_oom();
			return -1;
		}
		m->ids = ids;
		m->cap = cap;
	}
	gr = m->inner->write(m->inner, id, data, len, type);
	if (gr == 0)
		git_oid_cpy(&m->ids[m->n++], id);
	return gr;
}

static void mem_free(git_odb_backend *b)
{
	struct mem_odb *m = (struct mem_odb *)b;

	m->inner->free(m->inner);
	free(m->ids);
	free(m);
}

/* The repository's in-memory store, or NULL when none is attached. */
static struct mem_odb *mem_find(git_odb *odb)
{
	size_t n = git_odb_num_backends(odb);

	for (size_t i = 0; i < n; i++) {
		git_odb_backend *b = NULL;

		if (git_odb_get_backend(&b, odb, i) == 0 && b->write == mem_write)
			return (struct mem_odb *)b;
	}
	return NULL;
}

static void odbp(git_odb **p)
{
	git_odb_free(*p);
}

static void packbuilderp(git_packbuilder **p)
{
	git_packbuilder_free(*p);
}

int restack_odb_attach(git_repository *repo, struct err *e)
{
	_cleanup_(odbp) git_odb *odb = NULL;
	struct mem_odb *m;
	int gr;

	gr = git_repository_odb(&odb, repo);
	if (gr < 0)
		return git_fail(gr, "object database", e);
	if (mem_find(odb) != NULL)
		return 0;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	gr = git_odb_init_backend(&m->parent, GIT_ODB_BACKEND_VERSION);
	if (gr == 0)
		gr = git_mempack_new(&m->inner);
	if (gr < 0) {
		free(m);
		return git_fail(gr, "in-memory object store", e);
	}
	m->parent.read = mem_read;
	m->parent.read_header = mem_read_header;
	m->parent.exists = mem_exists;
	m->parent.write = mem_write;
	m->parent.free = mem_free;
	/* Highest priority: every write lands here, reads look here first. */
	gr = git_odb_add_backend(odb, &m->parent, 999);
	if (gr < 0) {
		mem_free(&m->parent);
		return git_fail(gr, "in-memory object store", e);
	}
	return 0;
}

/* Forget what the store holds. */
static int mem_reset(struct mem_odb *m)
{
	m->n = 0;
	return git_mempack_reset(m->inner);
}

int restack_odb_flush(git_repository *repo, size_t *ret_count, struct err *e)
{
	_cleanup_(packbuilderp) git_packbuilder *pb = NULL;
	_cleanup_(odbp) git_odb *odb = NULL;
	struct mem_odb *m;
	size_t count;
	int gr;

	gr = git_repository_odb(&odb, repo);
	if (gr < 0)
		return git_fail(gr, "object database", e);
	m = mem_find(odb);
	if (m == NULL || m->n == 0) {
		if (ret_count != NULL)
			*ret_count = 0;
		return 0;
	}
	gr = git_packbuilder_new(&pb, repo);
	for (size_t i = 0; gr == 0 && i < m->n; i++)
		gr = git_packbuilder_insert(pb, &m->ids[i], NULL);
	if (gr == 0)
		gr = git_packbuilder_write(pb, NULL, 0, NULL, NULL);
	if (gr < 0)
		return git_fail(gr, "write pack", e);
	count = git_packbuilder_object_count(pb);
	/* The pack is on disk and indexed: the copies in memory can go. */
	gr = git_odb_refresh(odb);
	if (gr == 0)
		gr = mem_reset(m);
	if (gr < 0)
		return git_fail(gr, "after writing the pack", e);
	if (ret_count != NULL)
		*ret_count = count;
	return 0;
}

int restack_odb_discard(git_repository *repo, struct err *e)
{
	_cleanup_(odbp) git_odb *odb = NULL;
	struct mem_odb *m;
	int gr;

	gr = git_repository_odb(&odb, repo);
	if (gr < 0)
		return git_fail(gr, "object database", e);
	m = mem_find(odb);
	if (m != NULL && (gr = mem_reset(m)) < 0)
		return git_fail(gr, "discard objects", e);
	return 0;
}
