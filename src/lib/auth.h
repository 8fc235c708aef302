/*
 * auth.h - API token secrets: made from getrandom(2), stored only as their
 * SHA-256 (libcrypto), compared by hash lookup.
 */
#ifndef REPOFLOW_AUTH_H
#define REPOFLOW_AUTH_H

#include <stddef.h>

#define AUTH_SECRET_LEN 44  /* "rf_" + 40 base64url chars (240 random bits), plus NUL */
#define AUTH_HASH_HEX_LEN 65

/* A new secret into out. 0 or negative errno. */
int auth_secret_new(char out[static AUTH_SECRET_LEN]);
/* SHA-256 of data, as lower-case hex. 0 or -EIO. */
int auth_sha256_hex(const void *data, size_t len, char out[static AUTH_HASH_HEX_LEN]);

#endif
