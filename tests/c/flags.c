/*
 * The per-call flags (pmem_sys_memcpy_flags, _memmove_flags, _memset_flags)
 * and the deep flush, from C: every combination of the six flags, for the
 * three stores, at lengths around the line and the threshold, into a
 * mapping of every granularity, in every table the knobs can select on
 * this CPU. The data must read back through an independent descriptor,
 * bytes around the range must be untouched, undefined bits must be refused
 * with EINVAL and change nothing, and pmem_sys_deep_flush/_deep_persist
 * must succeed on each mapping. (Which stores each flag makes is checked
 * by the persistence checker in pmem-sys/tests/persistence_flags.rs.)
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define SIZE (64u * 1024u)

static char dir[256];
static int cases;

static unsigned char expect[SIZE];

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 167 + seed + (i >> 7));
}

/* The file's bytes, read with pread, equal the model. */
static void compare_file(int fd, const char *what)
{
	static unsigned char back[SIZE];
	pmem_sys_drain();
	CHECK(pread(fd, back, SIZE, 0) == (ssize_t)SIZE, "%s: pread", what);
	size_t i = 0;
	while (i < SIZE && back[i] == expect[i])
		i++;
	CHECK(i == SIZE, "%s: byte %zu is %u, expected %u", what, i, i < SIZE ? back[i] : 0, i < SIZE ? expect[i] : 0);
}

static void one_mapping(const char *granularity, const char *impl)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, granularity);
	CHECK(pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", granularity) == 0, "force %s", granularity);
	size_t len;
	unsigned char __pmem *p = pmem_sys_map_file(path, SIZE, PMEM_SYS_FILE_CREATE, 0600, &len);
	CHECK(p != NULL, "map %s: %s", path, pmem_sys_errormsg());
	if (!p)
		return;
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "open %s", path);
	pmem_sys_memset_flags(p, 0, SIZE, 0);
	memset(expect, 0, SIZE);

	static unsigned char src[SIZE];
	const size_t lengths[] = {1, 7, 8, 63, 64, 65, 200, 257, 4096 + 24, 20000};
	const size_t offsets[] = {0, 3, 8, 64 + 40};
	unsigned seed = 0;
	char what[256];
	for (unsigned flags = 0; flags < 64; flags++) {
		for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
			size_t n = lengths[li], off = offsets[(flags + li) % 4];
			seed++;
			fill(src, n + 64, seed);
			snprintf(what, sizeof what, "%s %s flags %#x n %zu +%zu", impl, granularity, flags, n, off);

			/* memcpy_flags */
			CHECK(pmem_sys_memcpy_flags(p + off, src, n, flags) == 0, "%s memcpy: %s", what,
			      pmem_sys_errormsg());
			memcpy(expect + off, src, n);
			/* memset_flags, just after it */
			size_t at = off + n + 5;
			CHECK(pmem_sys_memset_flags(p + at, 0x100 + (int)seed, n, flags) == 0, "%s memset: %s", what,
			      pmem_sys_errormsg());
			memset(expect + at, (unsigned char)seed, n);
			/* memmove_flags inside the mapping, overlapping both ways */
			size_t base = 30000 + (seed % 64);
			memcpy(expect + base, src, n + 64);
			CHECK(pmem_sys_memcpy_flags(p + base, src, n + 64, flags | PMEM_SYS_F_NODRAIN) == 0, "%s", what);
			CHECK(pmem_sys_memmove_flags(p + base + 13, p + base, n, flags) == 0, "%s memmove up: %s", what,
			      pmem_sys_errormsg());
			memmove(expect + base + 13, expect + base, n);
			CHECK(pmem_sys_memmove_flags(p + base, p + base + 9, n, flags) == 0, "%s memmove down: %s", what,
			      pmem_sys_errormsg());
			memmove(expect + base, expect + base + 9, n);
			cases += 4;
		}
		snprintf(what, sizeof what, "%s %s flags %#x", impl, granularity, flags);
		compare_file(fd, what);
	}

	/* Undefined bits: EINVAL, a message naming the call and the argument,
	 * and nothing stored. */
	const unsigned bad[] = {64, 0x80, 1u << 31, 0xffffffffu};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		CHECK(pmem_sys_memcpy_flags(p, src, 100, bad[i]) == -1 && errno == EINVAL, "memcpy bad %#x", bad[i]);
		CHECK(strstr(pmem_sys_errormsg(), "pmem_sys_memcpy_flags") && strstr(pmem_sys_errormsg(), "flags"),
		      "message: %s", pmem_sys_errormsg());
		errno = 0;
		CHECK(pmem_sys_memset_flags(p, 0x55, 100, bad[i]) == -1 && errno == EINVAL, "memset bad %#x", bad[i]);
		CHECK(strstr(pmem_sys_errormsg(), "pmem_sys_memset_flags") != NULL, "message: %s", pmem_sys_errormsg());
		errno = 0;
		CHECK(pmem_sys_memmove_flags(p, p + 50, 100, bad[i]) == -1 && errno == EINVAL, "memmove bad %#x", bad[i]);
		CHECK(strstr(pmem_sys_errormsg(), "pmem_sys_memmove_flags") != NULL, "message: %s", pmem_sys_errormsg());
	}
	compare_file(fd, "after refused flags");

	/* Zero bytes with a drain: succeeds, stores nothing. */
	CHECK(pmem_sys_memcpy_flags(p, NULL, 0, 0) == 0, "n 0: %s", pmem_sys_errormsg());

	CHECK(pmem_sys_deep_flush(p + 100, 5000) == 0, "deep_flush %s: %s", granularity, pmem_sys_errormsg());
	CHECK(pmem_sys_deep_persist(p, SIZE) == 0, "deep_persist %s: %s", granularity, pmem_sys_errormsg());
	CHECK(pmem_sys_deep_flush(p, 0) == 0, "deep_flush 0 bytes: %s", pmem_sys_errormsg());
	compare_file(fd, "after deep flush");
	close(fd);
	CHECK(memunmap_pmem(p) == 0, "unmap");
	unlink(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/pmem-sys-flags-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(PMEM_SYS_F_NODRAIN == 1 && PMEM_SYS_F_NONTEMPORAL == 2 && PMEM_SYS_F_TEMPORAL == 4 &&
		      PMEM_SYS_F_WC == 8 && PMEM_SYS_F_WB == 16 && PMEM_SYS_F_NOFLUSH == 32,
	      "flag values are PMDK's");

	/* Every table the knobs can select here: copy rungs x flush rungs. */
	static const char *copy_knobs[][3] = {
		{NULL},
		{"PMEM_SYS_NO_AVX512F", NULL},
		{"PMEM_SYS_NO_AVX512F", "PMEM_SYS_NO_AVX2", NULL},
		{"PMEM_SYS_NO_MOVNT", NULL},
	};
	static const char *flush_knobs[][3] = {
		{NULL},
		{"PMEM_SYS_NO_CLWB", NULL},
		{"PMEM_SYS_NO_CLWB", "PMEM_SYS_NO_CLFLUSHOPT", NULL},
	};
	const char *seen[32];
	int nseen = 0;
	for (size_t c = 0; c < 4; c++) {
		for (size_t f = 0; f < 3; f++) {
			const char *all[] = {"PMEM_SYS_NO_AVX512F", "PMEM_SYS_NO_AVX2", "PMEM_SYS_NO_MOVNT",
					     "PMEM_SYS_NO_CLWB", "PMEM_SYS_NO_CLFLUSHOPT"};
			/* Back to what the environment forced (a Valgrind run forces
			 * tiers it cannot decode off), then force more on top. */
			for (size_t i = 0; i < 5; i++)
				pmem_sys_set_option(all[i], getenv(all[i]));
			for (size_t i = 0; copy_knobs[c][i]; i++)
				CHECK(pmem_sys_set_option(copy_knobs[c][i], "1") == 0, "set %s", copy_knobs[c][i]);
			for (size_t i = 0; flush_knobs[f][i]; i++)
				CHECK(pmem_sys_set_option(flush_knobs[f][i], "1") == 0, "set %s", flush_knobs[f][i]);
			const char *impl = pmem_sys_impl();
			int dup = 0;
			for (int i = 0; i < nseen; i++)
				dup |= strcmp(seen[i], impl) == 0;
			if (dup)
				continue;
			seen[nseen++] = impl;
			printf("table %s\n", impl);
			one_mapping("cache_line", impl);
			one_mapping("byte", impl);
			one_mapping("page", impl);
		}
	}
	printf("%d tables, %d flagged stores checked\n", nseen, cases);
	rmdir(dir);
	CHECK_DONE("flags");
}
