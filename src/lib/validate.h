/*
 * validate.h - cheap checks of untrusted names, done in the request before
 * anything is written. Each returns NULL when the value is valid, else a
 * static sentence saying what is wrong (used as the problem's message).
 */
#ifndef REPOFLOW_VALIDATE_H
#define REPOFLOW_VALIDATE_H

#include <stddef.h>

#define BRANCH_NAME_MAX 255
#define REPO_NAME_MAX 64
#define IDEMPOTENCY_KEY_MAX 255

/* A branch name as `git check-ref-format --branch` takes it, <= 255 bytes, no leading '-'. */
const char *validate_branch_name(const char *s, size_t len);
/* ^[a-z0-9][a-z0-9._-]{0,63}$ */
const char *validate_repo_name(const char *s, size_t len);
/* A remote URL: non-empty, <= 4096 bytes, no control bytes. */
const char *validate_remote_url(const char *s, size_t len);

#endif
