/* semver.c: Semantic Versioning 2.0.0 parsing and precedence. */
#include "semver.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Reads a numeric identifier (no leading zeros) and advances *p. */
static int parse_number(const char **p, unsigned long *out) {
    const char *s = *p;
    char *end;
    if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    *p = end;
    return 0;
}

/* Checks a dot-separated identifier list of length len. */
static int valid_identifiers(const char *s, size_t len, int numeric_rules) {
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!isalnum((unsigned char)s[i]) && s[i] != '-')
                return 0;
            continue;
        }
        size_t n = i - start;
        if (n == 0)
            return 0;
        size_t digits = strspn(s + start, "0123456789");
        if (numeric_rules && digits >= n && n > 1 && s[start] == '0')
            return 0; /* numeric pre-release identifiers have no leading zeros */
        start = i + 1;
    }
    return 1;
}

int semver_parse(const char *text, semver_t *out) {
    const char *p = text;
    memset(out, 0, sizeof *out);
    if (*p == 'v')
        p++;
    if (parse_number(&p, &out->major) || *p++ != '.' ||
        parse_number(&p, &out->minor) || *p++ != '.' ||
        parse_number(&p, &out->patch))
        return -1;
    if (*p == '-') {
        size_t n = strcspn(++p, "+");
        if (n >= SEMVER_PRE_MAX || !valid_identifiers(p, n, 1))
            return -1;
        memcpy(out->pre, p, n);
        out->pre[n] = '\0';
        p += n;
    }
    if (*p == '+') {
        p++;
        if (!valid_identifiers(p, strlen(p), 0))
            return -1;
        p += strlen(p);
    }
    return *p == '\0' ? 0 : -1;
}

static int cmp_ul(unsigned long a, unsigned long b) { return (a > b) - (a < b); }

static int is_numeric(const char *s, size_t n) { return strspn(s, "0123456789") >= n; }

/* Compares pre-release strings identifier by identifier. */
static int compare_pre(const char *a, const char *b) {
    if (*a == '\0' || *b == '\0')
        return (*a == '\0') - (*b == '\0'); /* a release outranks its pre-releases */
    while (*a && *b) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        int num_a = is_numeric(a, na), num_b = is_numeric(b, nb), c;
        if (num_a && num_b)
            c = na != nb ? cmp_ul(na, nb) : strncmp(a, b, na); /* no leading zeros */
        else if (num_a || num_b)
            c = num_a ? -1 : 1; /* numeric identifiers sort first */
        else {
            c = strncmp(a, b, na < nb ? na : nb);
            if (c == 0)
                c = cmp_ul(na, nb);
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return (*a != '\0') - (*b != '\0'); /* more identifiers win */
}

int semver_compare(const semver_t *a, const semver_t *b) {
    int c = cmp_ul(a->major, b->major);
    if (c == 0)
        c = cmp_ul(a->minor, b->minor);
    if (c == 0)
        c = cmp_ul(a->patch, b->patch);
    if (c == 0)
        c = compare_pre(a->pre, b->pre);
    return c;
}
