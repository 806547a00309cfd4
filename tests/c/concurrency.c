/*
 * 8 threads map, copy, persist and unmap concurrently for a few seconds,
 * each on files of its own and on one shared page-granular mapping, and
 * every byte is checked afterwards through read().
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define THREADS 8
#define SLICE (64 * 1024)

static char dir[256];
static unsigned char __pmem *shared;
static double seconds = 3.0;
static int failures[THREADS];
static long rounds[THREADS];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	char path[512];
	unsigned char src[SLICE], back[SLICE];
	double end = now() + seconds;
	while (now() < end) {
		unsigned seed = (unsigned)(id * 7919 + rounds[id]);
		for (size_t i = 0; i < SLICE; i++)
			src[i] = (unsigned char)(i * 13 + seed);
		/* A private file: map, copy, persist, unmap, read back. */
		snprintf(path, sizeof path, "%s/t%d", dir, id);
		size_t off = (size_t)(seed % 61);
		size_t len = SLICE - off - (seed % 97);
		unsigned char __pmem *p = pmem_sys_map_file(path, SLICE, PMEM_SYS_FILE_CREATE, 0600, NULL);
		if (!p) {
			fprintf(stderr, "thread %d: map: %s\n", id, pmem_sys_errormsg());
			failures[id]++;
			break;
		}
		memcpy_to_pmem(p + off, src, len);
		if (pmem_sys_persist(p + off, len) != 0) {
			fprintf(stderr, "thread %d: persist: %s\n", id, pmem_sys_errormsg());
			failures[id]++;
		}
		if (memunmap_pmem(p) != 0) {
			fprintf(stderr, "thread %d: unmap: %s\n", id, pmem_sys_errormsg());
			failures[id]++;
		}
		int fd = open(path, O_RDONLY);
		if (pread(fd, back, len, (off_t)off) != (ssize_t)len || memcmp(back, src, len) != 0) {
			fprintf(stderr, "thread %d: file content differs after persist and unmap\n", id);
			failures[id]++;
		}
		close(fd);
		/* The shared mapping: this thread's slice only. */
		memcpy_to_pmem(shared + (size_t)id * SLICE, src, SLICE);
		wmb_pmem();
		if (pmem_sys_drain() != 0) {
			fprintf(stderr, "thread %d: drain: %s\n", id, pmem_sys_errormsg());
			failures[id]++;
		}
		rounds[id]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds = atof(argv[1]);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/pmem-sys-conc-XXXXXX", tmp);
	if (!mkdtemp(dir))
		return 2;
	char spath[512];
	snprintf(spath, sizeof spath, "%s/shared", dir);
	shared = pmem_sys_map_file(spath, THREADS * SLICE, PMEM_SYS_FILE_CREATE, 0600, NULL);
	CHECK(shared != NULL, "map shared: %s", pmem_sys_errormsg());
	if (!shared)
		return 1;
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	long total = 0;
	for (int i = 0; i < THREADS; i++) {
		CHECK(failures[i] == 0, "thread %d: %d failures", i, failures[i]);
		CHECK(rounds[i] > 0, "thread %d made no progress", i);
		total += rounds[i];
	}
	/* Every byte of the shared file is the last pattern its thread wrote. */
	unsigned char *back = malloc(THREADS * SLICE);
	int fd = open(spath, O_RDONLY);
	CHECK(pread(fd, back, THREADS * SLICE, 0) == THREADS * SLICE, "read shared");
	close(fd);
	for (int id = 0; id < THREADS; id++) {
		unsigned seed = (unsigned)(id * 7919 + rounds[id] - 1);
		for (size_t i = 0; i < SLICE; i++) {
			if (back[(size_t)id * SLICE + i] != (unsigned char)(i * 13 + seed)) {
				CHECK(0, "shared slice %d byte %zu", id, i);
				break;
			}
		}
	}
	free(back);
	printf("concurrency: %d threads, %ld rounds in %.1f s\n", THREADS, total, seconds);
	CHECK(memunmap_pmem(shared) == 0, "unmap shared");
	for (int i = 0; i < THREADS; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/t%d", dir, i);
		unlink(path);
	}
	unlink(spath);
	rmdir(dir);
	CHECK_DONE("concurrency");
}
