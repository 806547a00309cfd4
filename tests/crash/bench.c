/*
 * The cost of crash-test recording per call (run by bench.sh; a benchmark,
 * not a test).
 *
 *   bench FILE SIZE ITERATIONS MODE
 *
 * Maps SIZE bytes of FILE and times ITERATIONS rounds of two calls each:
 * MODE "api": memcpy_to_pmem of 64 bytes (at a rotating line) and
 * wmb_pmem(); MODE "direct": a 64-byte store through the pointer and
 * pmem_sys_persist() of it; MODE "copy": memcpy_to_pmem alone, twice per
 * round (no fence: the hook's cost when recording is off shows best
 * there). Prints nanoseconds per call and the peak
 * resident memory. Recording is on when PMEM_SYS_RECORD is set.
 */
#define _POSIX_C_SOURCE 200809L
#include <pmem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s FILE SIZE ITERATIONS api|direct\n", argv[0]);
		return 2;
	}
	size_t size = strtoull(argv[2], NULL, 0);
	long iters = atol(argv[3]);
	int direct = strcmp(argv[4], "direct") == 0;
	int copy = strcmp(argv[4], "copy") == 0;
	unlink(argv[1]);
	char *base = pmem_sys_map_file(argv[1], size, PMEM_SYS_FILE_CREATE, 0644, NULL);
	if (!base) {
		fprintf(stderr, "bench: %s\n", pmem_sys_errormsg());
		return 2;
	}
	char rec[64];
	size_t lines = size / 64;
	double t0 = now();
	for (long i = 0; i < iters; i++) {
		memset(rec, (int)i, sizeof(rec));
		char *at = base + (size_t)(i % (long)lines) * 64;
		if (copy) {
			memcpy_to_pmem(at, rec, sizeof(rec));
			memcpy_to_pmem(at, rec, sizeof(rec));
		} else if (direct) {
			memcpy(at, rec, sizeof(rec));
			pmem_sys_persist(at, sizeof(rec));
		} else {
			memcpy_to_pmem(at, rec, sizeof(rec));
			wmb_pmem();
		}
	}
	double ns = (now() - t0) / (2.0 * (double)iters);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s size %zu iterations %ld: %.0f ns per call, peak RSS %ld KiB\n", argv[4], size,
	       iters, ns, ru.ru_maxrss);
	memunmap_pmem(base);
	return 0;
}
