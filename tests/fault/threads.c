/* Concurrent faulting reads and checked writes from several threads, with
 * a handler of the program's own installed first: every fault of the
 * library is recovered in the thread that raised it, and none reaches the
 * program's handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <pmem.h>
#include <pthread.h>

#include "victim.h"

#define THREADS 6
#define ROUNDS 400

static unsigned char *map;
static atomic_int bad;

static void *worker(void *arg)
{
	size_t th = (size_t)arg, pg = page_size(), end = victim_end();
	unsigned char *buf = malloc(2 * pg);
	for (size_t k = 0; k < ROUNDS; k++) {
		size_t start = end - pg + (th * 131 + k * 17) % pg, good = end - start;
		size_t left = pmem_sys_copy_mc(buf, map + start, 2 * pg);
		if (left != 2 * pg - good || buf[good - 1] != pattern(start + good - 1))
			atomic_fetch_add(&bad, 1);
		errno = 0;
		if (memcpy_from_pmem(buf, map + end - 64, 128) != -1 || errno != EIO)
			atomic_fetch_add(&bad, 1);
		/* A checked write that faults on its second page; its first
		 * page gets the bytes it already holds. */
		if (pmem_sys_memcpy_to_pmem_checked(map + end - 64, buf, 128) != -1 || errno != EIO)
			atomic_fetch_add(&bad, 1);
		if (memcpy_from_pmem(buf, map, pg) != 0 || buf[pg - 1] != pattern(pg - 1))
			atomic_fetch_add(&bad, 1);
	}
	free(buf);
	return NULL;
}

int main(void)
{
	install_own_handler();
	map = victim_map(pmem_sys_map_file, pmem_sys_errormsg);
	pthread_t t[THREADS];
	for (size_t i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&bad) == 0, "%d wrong results in %d threads x %d rounds", atomic_load(&bad), THREADS, ROUNDS);
	CHECK(atomic_load(&own_seen) == 0, "the program's handler saw %d faults of the library", atomic_load(&own_seen));
	volatile unsigned char *q = map + victim_end() + 9;
	CHECK(*q == 0, "the program's handler mapped a fresh page");
	CHECK(atomic_load(&own_seen) == 1 && atomic_load(&own_addr) == (uintptr_t)q,
	      "the program's handler saw the fault outside the library");
	printf("fault/threads: %d threads x %d rounds of faulting reads and writes\n", THREADS, ROUNDS);
	CHECK_DONE("fault/threads");
}
