/* test_semver.c: unit tests; prints one line per test, exits 1 on failure. */
#include <stdio.h>

#include "semver.h"

static int failures, count;

static void check(int ok, const char *what) {
    count++;
    if (!ok)
        failures++;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
}

static int cmp(const char *x, const char *y) {
    semver_t a, b;
    if (semver_parse(x, &a) || semver_parse(y, &b))
        return 99; /* never a valid comparison result */
    return semver_compare(&a, &b);
}

int main(void) {
    semver_t v;
    check(semver_parse("1.2.3", &v) == 0 && v.major == 1 && v.minor == 2 && v.patch == 3,
          "parses 1.2.3");
    check(semver_parse("v10.0.7-rc.1+build.5", &v) == 0 && v.major == 10 && v.patch == 7,
          "parses v prefix, pre-release and build metadata");
    check(semver_parse("1.0.0-alpha.beta", &v) == 0 && v.pre[0] == 'a', "keeps pre-release");
    check(semver_parse("1.2", &v) != 0, "rejects a missing patch number");
    check(semver_parse("01.2.3", &v) != 0, "rejects leading zeros");
    check(semver_parse("1.2.3-01", &v) != 0, "rejects leading zeros in pre-release");
    check(semver_parse("1.2.3-", &v) != 0, "rejects an empty pre-release");
    check(semver_parse("1.2.3-a..b", &v) != 0, "rejects an empty identifier");
    check(semver_parse("1.2.3 ", &v) != 0, "rejects trailing garbage");
    check(cmp("1.2.3", "1.10.0") < 0, "compares numerically, not as text");
    check(cmp("2.0.0", "1.99.99") > 0, "major version wins");
    check(cmp("1.0.0+build.1", "1.0.0+build.2") == 0, "ignores build metadata");
    check(cmp("1.0.0-rc.1", "1.0.0") < 0, "pre-release sorts before release");
    check(cmp("1.0.0-alpha", "1.0.0-alpha.1") < 0, "more identifiers sort later");
    check(cmp("1.0.0-alpha.1", "1.0.0-alpha.beta") < 0, "numeric before alphanumeric");
    check(cmp("1.0.0-beta.2", "1.0.0-beta.11") < 0, "numeric identifiers compare as numbers");
    check(cmp("1.0.0-beta", "1.0.0-alpha") > 0, "alphanumeric identifiers compare as text");
    check(cmp("1.0.0-rc.1", "1.0.0-rc.1") == 0, "equal versions");
    printf("%d/%d passed\n", count - failures, count);
    return failures ? 1 : 0;
}
