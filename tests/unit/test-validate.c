/* test-validate.c - branch, repo and URL name checks, against git's rules. */
#include <string.h>

#include "tap.h"
#include "validate.h"

static const char *br(const char *s)
{
	return validate_branch_name(s, strlen(s));
}

int main(void)
{
	static const char *const good[] = {"main", "feat-1", "feat/a/b", "a.b", "x@y", "UPPER_9",
					   "f\xc3\xa9t"};
	static const char *const bad[] = {"",	   "-x",      "a..b",	 "a@{1}", "a b",  "a~1",
					  "a^",	   "a:b",     "a?",	 "a*",	  "a[",	  "a\\b",
					  "/a",	   "a/",      "a//b",	 ".a",	  "a/.b", "a.lock",
					  "a/b.lock/c", "a.",  "@",	 "HEAD",  "a\x01", "a\x7f"};
	char long_name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(br(good[i]) == NULL, good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(br(bad[i]) != NULL, "rejected");
	ok(validate_branch_name("a\0b", 3) != NULL, "NUL byte rejected");
	memset(long_name, 'a', sizeof(long_name));
	ok(validate_branch_name(long_name, 255) == NULL, "255 bytes accepted");
	ok(validate_branch_name(long_name, 256) != NULL, "256 bytes rejected");

	ok(validate_repo_name("web", 3) == NULL, "repo web");
	ok(validate_repo_name("a.b_c-9", 7) == NULL, "repo with . _ -");
	ok(validate_repo_name("Web", 3) != NULL, "upper case rejected");
	ok(validate_repo_name("-web", 4) != NULL, "leading - rejected");
	ok(validate_repo_name("", 0) != NULL, "empty rejected");
	ok(validate_repo_name(long_name, 65) != NULL, "65 bytes rejected");
	ok(validate_repo_name("a/b", 3) != NULL, "slash rejected");

	ok(validate_remote_url("file:///tmp/x.git", 17) == NULL, "file url");
	ok(validate_remote_url("a\nb", 3) != NULL, "newline in url rejected");
	ok(validate_remote_url("-oProxyCommand=x", 16) != NULL, "option-like url rejected");
	return tap_done();
}
