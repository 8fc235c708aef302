/*
 * validate.c - cheap, allocation-free checks of names that come from
 * requests. The branch rules are those of `git check-ref-format --branch`
 * for a name under refs/heads/, plus our own limits (length, no leading
 * '-', which git accepts but command lines do not).
 */
#include "validate.h"

#include <stdbool.h>
#include <string.h>

static bool bad_ref_byte(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' ||
	       c == '?' || c == '*' || c == '[' || c == '\\';
}

const char *validate_branch_name(const char *s, size_t len)
{
	size_t comp_start = 0;

	if (len == 0)
		return "must not be empty";
	if (len > BRANCH_NAME_MAX)
		return "must be at most 255 bytes";
	if (memchr(s, '\0', len) != NULL)
		return "must not contain NUL bytes";
	if (s[0] == '-')
		return "must not start with '-'";
	if (s[0] == '/' || s[len - 1] == '/')
		return "must not start or end with '/'";
	if (s[len - 1] == '.')
		return "must not end with '.'";
	if (len == 1 && s[0] == '@')
		return "must not be '@'";
	if (len == 4 && memcmp(s, "HEAD", 4) == 0)
		return "must not be HEAD";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (bad_ref_byte(c))
			return "must not contain control bytes, space, or any of ~ ^ : ? * [ \\";
		if (c == '.' && i + 1 < len && s[i + 1] == '.')
			return "must not contain '..'";
		if (c == '@' && i + 1 < len && s[i + 1] == '{')
			return "must not contain '@{'";
		if (c == '/' && i + 1 < len && s[i + 1] == '/')
			return "must not contain '//'";
		if (c == '/' || i + 1 == len) {
			size_t end = c == '/' ? i : len;
			size_t clen = end - comp_start;

			if (s[comp_start] == '.')
				return "no path component may start with '.'";
			if (clen >= 5 && memcmp(s + end - 5, ".lock", 5) == 0)
				return "no path component may end with '.lock'";
			comp_start = i + 1;
		}
	}
	return NULL;
}

const char *validate_repo_name(const char *s, size_t len)
{
	if (len == 0 || len > REPO_NAME_MAX)
		return "must be 1 to 64 bytes";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (i == 0 && !alnum)
			return "must start with a lower-case letter or a digit";
		if (!alnum && c != '.' && c != '_' && c != '-')
			return "may contain only a-z, 0-9, '.', '_' and '-'";
	}
	return NULL;
}

const char *validate_remote_url(const char *s, size_t len)
{
	if (len == 0)
		return "must not be empty";
	if (len > 4096)
		return "must be at most 4096 bytes";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "must not contain control bytes";
	if (s[0] == '-')
		return "must not start with '-'";
	return NULL;
}
