/* main.c: command-line front end for the semver library. */
#include <stdio.h>
#include <string.h>

#include "semver.h"

static int usage(void) {
    fputs("usage: semver compare A B    print <, = or >\n"
          "       semver max V...       print the highest version\n",
          stderr);
    return 2;
}

static int parse_or_complain(const char *text, semver_t *v) {
    if (semver_parse(text, v) == 0)
        return 0;
    fprintf(stderr, "semver: invalid version '%s'\n", text);
    return -1;
}

int main(int argc, char **argv) {
    semver_t a, b;
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "compare") == 0 && argc == 4) {
        if (parse_or_complain(argv[2], &a) || parse_or_complain(argv[3], &b))
            return 1;
        int c = semver_compare(&a, &b);
        puts(c < 0 ? "<" : c > 0 ? ">" : "=");
        return 0;
    }
    if (strcmp(argv[1], "max") == 0) {
        int best = 2;
        if (parse_or_complain(argv[2], &a))
            return 1;
        for (int i = 3; i < argc; i++) {
            if (parse_or_complain(argv[i], &b))
                return 1;
            if (semver_compare(&b, &a) > 0) {
                a = b;
                best = i;
            }
        }
        puts(argv[best]);
        return 0;
    }
    return usage();
}
