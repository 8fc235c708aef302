/*
 * stack.h - the job frame every stack workflow runs in (WORKFLOWS.md, "The
 * job frame"), shared by the six kinds: pre-sync, compute in memory, one
 * leased push, the locked move of the mirror's refs, and the projection,
 * job and events in one SQLite transaction, with the post-sync facts
 * (heads, remote heads, needs_restack) written in that same transaction.
 *
 * The kinds differ only in their plan: which branches they restack onto
 * what, and the stack metadata they change on the way (a new parent, a
 * branch tracked, branches found merged). A kind is a `struct stack_ops`;
 * its plan runs right after the fetch, marks the branches to restack
 * (`in_set`) and may change a branch's `parent`, add branches to track or
 * mark merged ones. Everything after that is the same code for every
 * kind, in stack.c.
 */
#ifndef REPOFLOW_WORKER_STACK_H
#define REPOFLOW_WORKER_STACK_H

#include <git2.h>

#include "gitops.h"
#include "store.h"
#include "workflow.h"

enum stack_outcome {
	STACK_NONE,	 /* not restacked by this job */
	STACK_UNCHANGED, /* restacked; already on its parent's tip */
	STACK_UPDATED,	 /* restacked; new commits */
	STACK_CONFLICT,	 /* its replay stopped on a conflict */
	STACK_SKIPPED,	 /* stacked on a conflicting branch (on_conflict: skip) */
};

/* One branch the job knows: every tracked branch, and a branch a plan adds. */
struct stack_branch {
	char *name;
	char *parent;	  /* the parent it ends on (a plan may change it); NULL: none */
	char *old_parent; /* its parent before the job; NULL when untracked */
	bool tracked;	  /* tracked before the job */
	bool active;	  /* state active before the job */
	bool on_remote;	  /* the fetch saw it */
	bool has_head;
	git_oid head;  /* after the fetch; when gone from the remote, the projection's last head */
	git_oid lease; /* the remote's value at the fetch; zero when absent */
	bool has_base;
	git_oid base; /* the projection's base */

	/* The plan. */
	bool in_set;	      /* restack it */
	bool merged;	      /* sync_repo: merged into the trunk */
	bool track;	      /* register: track it on `parent` at track_base */
	bool already_tracked; /* register: it was tracked already (refreshed) */
	bool reparent_always; /* record the new parent even when its restack does not apply */
	git_oid track_base;

	/* The compute. */
	enum stack_outcome outcome;
	git_oid new_head, new_base;
	bool base_healed;
	git_oid healed_base;
	git_oid conflict_commit, conflict_onto;
	char **paths;
	size_t npaths;

	/* The commit. */
	bool pushed;	   /* the remote accepted its new head */
	bool applies;	   /* its new head and base are to be recorded */
	int needs_restack; /* after the job; -1 when it could not be told */
};

struct stack_job;

struct stack_ops {
	/*
	 * After the fetch, with every tracked branch loaded: check the
	 * request (failing with the problem code in f->err) and make the
	 * plan. Required.
	 */
	int (*plan)(struct stack_job *sj);
	/* Add the kind's own keys to the result. Optional. */
	int (*report)(struct stack_job *sj, struct json_object *result);
	/*
	 * The kind's own rows, inside the finishing transaction, after the
	 * branch rows. Called whatever the outcome (also when the fetch
	 * failed). Optional.
	 */
	int (*apply)(struct stack_job *sj, int outcome, struct err *e);
	/* Before the fetch: the kind's own early writes (sync_repo's status). Optional. */
	int (*start)(struct stack_job *sj);
};

struct stack_job {
	struct frame *f;
	const struct stack_ops *ops;
	struct repo repo;
	char *path; /* the mirror */
	struct gitops_cred cred;
	git_repository *git;
	git_signature *committer;

	struct gitops_head *heads; /* after the fetch */
	size_t nheads;
	bool fetched;
	bool has_trunk;
	git_oid trunk_tip;

	struct stack_branch **b; /* each allocated alone, so pointers stay valid */
	size_t n, cap;
	size_t *order; /* the restack set, parents first, siblings by name */
	size_t norder;

	int64_t step, total; /* progress */
	bool conflict_abort; /* a conflict with on_conflict abort: nothing changes */
	bool reached;	     /* the job's changes are committed (pushed, or not pushing) */
	bool mirror_moved;
	void *kstate; /* the kind's own */
	void (*kstate_free)(void *);
};

/* Run a stack workflow of kind `ops` in frame f: the whole frame, start to apply. */
int stack_run(struct frame *f, const struct stack_ops *ops);

/* For the plans. */
struct stack_branch *stack_find(struct stack_job *sj, const char *name);
/* The branch's head as the fetch saw it on the remote; NULL when absent. */
const struct gitops_head *stack_remote(const struct stack_job *sj, const char *name);
/* Add an untracked branch the plan needs (register); returns it, NULL on ENOMEM. */
struct stack_branch *stack_add(struct stack_job *sj, const char *name);
/* Is `name` stacked (directly or not) above `ancestor`, by the parents the job knows now? */
bool stack_is_above(struct stack_job *sj, const char *name, const char *ancestor);
/*
 * Mark `root` and every tracked, active branch stacked above it for
 * restacking. Branches gone from the remote are left out (and so is
 * everything above them).
 */
void stack_mark_subtree(struct stack_job *sj, struct stack_branch *root);
/* The tip of a parent by name as the job knows it now (its new head once restacked). */
int stack_tip(struct stack_job *sj, const char *name, git_oid *ret);
/*
 * The branch a request names: on the remote (else branch_not_found) and
 * tracked and active (else not_tracked; the trunk is never tracked).
 */
int stack_need_tracked(struct stack_job *sj, const char *name, struct stack_branch **ret);
/* A branch that must be on the remote: branch_not_found otherwise. */
int stack_need_remote(struct stack_job *sj, const char *name);
/*
 * A parent for `branch` as reparent and register check it: the trunk or a
 * tracked, active branch on the remote, not `branch` and not stacked above
 * it. Fails with "cycle" or "not_tracked".
 */
int stack_check_parent(struct stack_job *sj, const char *branch, const char *parent);
/* A string array / object member for results; -ENOMEM. */
int stack_json_add(struct json_object *o, const char *key, struct json_object *v);
int stack_json_push(struct json_object *a, struct json_object *v);
/* 40 hex digits of id into a new json string. */
struct json_object *stack_json_oid(const git_oid *id);

/* The kinds. */
int restack_repo_run(struct frame *f);
int restack_subtree_run(struct frame *f);
int rebase_branch_run(struct frame *f);
int reparent_branch_run(struct frame *f);
int register_branch_run(struct frame *f);

#endif
