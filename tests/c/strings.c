/*
 * Lifetimes of the strings the library returns (issue 15 item 1).
 *
 * pmem_sys_errormsg(): one per-thread buffer, the same pointer for every
 * call of a thread, valid until the thread exits, overwritten in place by
 * the thread's next failing call. The idiom
 *     printf("%d %s\n", memunmap_pmem(x), pmem_sys_errormsg());
 * must read valid memory in either argument order (an older version freed
 * the previous message on each failure: Valgrind reported an invalid read).
 * Every other returned string lives as long as the process.
 *
 * Run plain, under ASan+UBSan and under Valgrind (tests/verify/run.sh):
 * an invalid read is an error there even when the bytes happen to match.
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

/* The errormsg pointer of a thread that failed, taken before another
 * thread fails; the other thread's failure must not touch it. */
static const char *other_msg;
static char other_copy[256];

static void *fail_in_thread(void *arg)
{
	(void)arg;
	CHECK(memunmap_pmem((void __pmem *)(uintptr_t)0x1000) == -1, "thread: unmap refused");
	other_msg = pmem_sys_errormsg();
	snprintf(other_copy, sizeof other_copy, "%s", other_msg);
	return NULL;
}

int main(void)
{
	char path[512];
	snprintf(dir, sizeof dir, "/tmp/pmem-sys-strings-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	/* 1. The pointer is taken before the failures it will show. */
	const char *first = pmem_sys_errormsg();
	CHECK(first != NULL && first[0] == '\0', "errormsg before any failure: \"%s\"", first ? first : "(null)");
	CHECK(memunmap_pmem(NULL) == -1, "memunmap_pmem(NULL) refused");
	CHECK(pmem_sys_errormsg() == first, "the pointer changed after a failure (%p, then %p)", (void *)first,
	      (void *)pmem_sys_errormsg());
	CHECK(strncmp(first, "memunmap_pmem: addr", 19) == 0, "old pointer shows the new message: \"%s\"", first);

	/* 2. The printf idiom, with messages of different lengths so a freed
	 * and reallocated buffer would move. */
	char buf[8192];
	snprintf(path, sizeof path, "%s/missing/deeper/still/missing", dir);
	for (int i = 0; i < 4; i++) {
		int n;
		if (i % 2 == 0)
			n = snprintf(buf, sizeof buf, "%d %s\n", memunmap_pmem((void __pmem *)(uintptr_t)0x1000),
				     pmem_sys_errormsg());
		else
			n = snprintf(buf, sizeof buf, "%p %s\n",
				     (void *)pmem_sys_map_file(path, 4096, 0, 0644, NULL), pmem_sys_errormsg());
		CHECK(n > 0 && strlen(buf) == (size_t)n, "idiom %d: output length", i);
		printf("  idiom %d: %s", i, buf);
	}
	CHECK(strstr(first, "pmem_sys_map_file: path") == first, "last message: \"%s\"", first);

	/* 3. A message longer than the buffer is cut, ends in "...", and the
	 * pointer stays the same. */
	char longpath[6000];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	errno = 0;
	CHECK(pmem_sys_map_file(longpath, 4096, 0, 0644, NULL) == NULL, "long path refused");
	size_t len = strlen(pmem_sys_errormsg());
	CHECK(pmem_sys_errormsg() == first, "pointer moved after a long message");
	CHECK(len > 4000 && len < 4608, "long message length %zu", len);
	CHECK(len >= 3 && strcmp(first + len - 3, "...") == 0, "long message does not end in ...");

	/* 4. Other threads have their own buffer. */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, fail_in_thread, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	CHECK(other_msg != first, "two threads share one buffer");
	CHECK(strncmp(first, "pmem_sys_map_file", 17) == 0, "another thread's failure changed this thread's message: \"%s\"",
	      first);
	CHECK(strncmp(other_copy, "memunmap_pmem", 13) == 0, "thread message \"%s\"", other_copy);

	/* 5. The reason outlives the mapping. */
	snprintf(path, sizeof path, "%s/f", dir);
	size_t mapped = 0;
	void __pmem *p = pmem_sys_map_file(path, 4096, PMEM_SYS_FILE_CREATE, 0644, &mapped);
	CHECK(p != NULL, "map: %s", pmem_sys_errormsg());
	if (p) {
		const char *why = pmem_sys_mapping_reason(p);
		char copy[1024];
		CHECK(why != NULL, "reason: %s", pmem_sys_errormsg());
		snprintf(copy, sizeof copy, "%s", why ? why : "");
		/* The idiom's other order: the reason printed after the unmap. */
		int r = memunmap_pmem(p);
		CHECK(r == 0, "unmap: %s", pmem_sys_errormsg());
		CHECK(why && strcmp(why, copy) == 0, "reason changed after the unmap: \"%s\"", why ? why : "");
		printf("  reason after unmap: %s\n", why ? why : "");
	}

	/* 6. Knob strings: one call does not invalidate another's result, and
	 * a later set_option does not change an earlier string. */
	const char *movnt = pmem_sys_get_option("PMEM_SYS_MOVNT_THRESHOLD");
	const char *avx2 = pmem_sys_get_option("PMEM_SYS_NO_AVX2");
	const char *knobs = pmem_sys_knobs();
	const char *impl = pmem_sys_impl();
	CHECK(movnt && avx2 && knobs && impl, "string calls returned NULL");
	char movnt_copy[64], avx2_copy[64], knobs_copy[1024], impl_copy[128];
	snprintf(movnt_copy, sizeof movnt_copy, "%s", movnt ? movnt : "");
	snprintf(avx2_copy, sizeof avx2_copy, "%s", avx2 ? avx2 : "");
	snprintf(knobs_copy, sizeof knobs_copy, "%s", knobs ? knobs : "");
	snprintf(impl_copy, sizeof impl_copy, "%s", impl ? impl : "");
	CHECK(pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", "12345") == 0, "set_option: %s", pmem_sys_errormsg());
	const char *movnt2 = pmem_sys_get_option("PMEM_SYS_MOVNT_THRESHOLD");
	const char *knobs2 = pmem_sys_knobs();
	CHECK(movnt2 && strcmp(movnt2, "12345") == 0, "threshold now \"%s\"", movnt2 ? movnt2 : "(null)");
	CHECK(knobs2 && strstr(knobs2, "12345") != NULL, "knobs now \"%s\"", knobs2 ? knobs2 : "(null)");
	CHECK(movnt && strcmp(movnt, movnt_copy) == 0, "earlier get_option string changed");
	CHECK(avx2 && strcmp(avx2, avx2_copy) == 0, "earlier get_option string changed (other knob)");
	CHECK(knobs && strcmp(knobs, knobs_copy) == 0, "earlier knobs string changed");
	CHECK(pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", NULL) == 0, "restore: %s", pmem_sys_errormsg());
	CHECK(impl && strcmp(impl, impl_copy) == 0, "impl string changed");
	CHECK(strcmp(pmem_sys_version(), "0.1.0") >= 0 && pmem_sys_cpu_features() != NULL, "version/features");
	printf("  %s %s %s | %s\n", pmem_sys_version(), impl_copy, movnt_copy, pmem_sys_cpu_features());

	unlink(path);
	rmdir(dir);
	CHECK_DONE("strings");
}
