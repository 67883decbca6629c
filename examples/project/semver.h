/* semver.h: parse and compare Semantic Versioning 2.0.0 strings. */
#ifndef SEMVER_H
#define SEMVER_H

#define SEMVER_PRE_MAX 64

typedef struct {
    unsigned long major;
    unsigned long minor;
    unsigned long patch;
    char pre[SEMVER_PRE_MAX]; /* pre-release, e.g. "rc.1"; "" for a release */
} semver_t;

/* Parses "1.2.3", "v1.2.3", "1.2.3-rc.1+build.7". Returns 0, or -1 if invalid. */
int semver_parse(const char *text, semver_t *out);

/* Returns <0, 0 or >0 by SemVer precedence (build metadata is ignored). */
int semver_compare(const semver_t *a, const semver_t *b);

#endif
