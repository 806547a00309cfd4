/* Minimal test helpers for the C tests: every failed check is printed with
 * its location and counted; main() returns the count. */
#ifndef PMEM_SYS_TEST_CHECK_H
#define PMEM_SYS_TEST_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			check_failures++;                                         \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,    \
				__LINE__, #cond);                                 \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
		}                                                                 \
	} while (0)

#define CHECK_DONE(name)                                                          \
	do {                                                                      \
		if (check_failures)                                               \
			fprintf(stderr, "%s: %d check(s) failed\n", name,         \
				check_failures);                                  \
		else                                                              \
			printf("%s: all checks passed\n", name);                  \
		return check_failures ? 1 : 0;                                    \
	} while (0)

#endif
