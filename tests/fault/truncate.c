/* A file truncated under a live mapping through another descriptor: reads
 * and checked writes past the new end return -1/EIO with the partial count
 * and the offset in the message; the process goes on and the rest of the
 * mapping stays usable. */
#define _GNU_SOURCE
#include <errno.h>
#include <pmem.h>

#include "victim.h"

int main(void)
{
	size_t pg = page_size(), end = victim_end();
	unsigned char *p = victim_map(pmem_sys_map_file, pmem_sys_errormsg);

	/* From 100 bytes into the last kept page, across the new end. */
	size_t start = end - pg + 100, n = 2 * pg, good = end - start;
	unsigned char *dst = calloc(1, n);
	size_t left = pmem_sys_copy_mc(dst, p + start, n);
	CHECK(left == n - good, "pmem_sys_copy_mc left %zu, expected %zu", left, n - good);
	int same = 1;
	for (size_t i = 0; i < good; i++)
		same &= dst[i] == pattern(start + i);
	CHECK(same, "the bytes before the fault were copied");

	errno = 0;
	memset(dst, 0, n);
	int rc = memcpy_from_pmem(dst, p + start, n);
	CHECK(rc == -1 && errno == EIO, "memcpy_from_pmem: rc %d errno %d", rc, errno);
	CHECK(dst[good - 1] == pattern(start + good - 1), "copied up to the fault");
	char want[64];
	snprintf(want, sizeof want, "memcpy_from_pmem: src+%zu (", good);
	CHECK(strncmp(pmem_sys_errormsg(), want, strlen(want)) == 0, "message: %s", pmem_sys_errormsg());
	snprintf(want, sizeof want, "%zu of %zu bytes copied", good, n);
	CHECK(strstr(pmem_sys_errormsg(), want) != NULL, "message: %s", pmem_sys_errormsg());

	/* Checked write across the new end. */
	unsigned char *src = malloc(n);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)~pattern(i);
	errno = 0;
	rc = pmem_sys_memcpy_to_pmem_checked(p + start, src, n);
	CHECK(rc == -1 && errno == EIO, "checked write: rc %d errno %d", rc, errno);
	snprintf(want, sizeof want, "pmem_sys_memcpy_to_pmem_checked: dst+%zu (", good);
	CHECK(strncmp(pmem_sys_errormsg(), want, strlen(want)) == 0, "message: %s", pmem_sys_errormsg());
	CHECK(pmem_sys_drain() == 0, "drain after a failed checked write: %s", pmem_sys_errormsg());
	CHECK(memcmp(p + start, src, good) == 0, "the bytes before the faulting page were written");

	/* Starting on an unbacked page copies nothing. */
	CHECK(pmem_sys_copy_mc(dst, p + end + 8, 16) == 16, "read starting past the end");
	CHECK(pmem_sys_memcpy_to_pmem_checked(p + end + 8, src, 16) == -1, "write starting past the end");

	/* The process goes on; the kept pages read and write as before. */
	rc = pmem_sys_memcpy_to_pmem_checked(p, src, end);
	CHECK(rc == 0, "checked write inside the file: %s", pmem_sys_errormsg());
	memset(dst, 0, n);
	CHECK(memcpy_from_pmem(dst, p, end) == 0, "read inside the file");
	CHECK(memcmp(dst, src, end) == 0, "the kept pages hold the checked write");
	CHECK(pmem_sys_persist(p, end) == 0, "persist: %s", pmem_sys_errormsg());
	CHECK(memcpy_from_pmem(NULL, NULL, 0) == 0, "n == 0 accepts NULL");
	CHECK(pmem_sys_copy_mc(NULL, NULL, 0) == 0, "n == 0 accepts NULL");
	CHECK(pmem_sys_memcpy_to_pmem_checked(NULL, NULL, 0) == 0, "n == 0 accepts NULL");
	CHECK(memunmap_pmem(p) == 0, "unmap: %s", pmem_sys_errormsg());

	/* Memory the library did not map (cache-line granularity for it): the
	 * checked write probes each page, then runs the engine's tiers. */
	unsigned char *q = victim_plain();
	CHECK(q != NULL, "plain mapping");
	if (q) {
		errno = 0;
		rc = pmem_sys_memcpy_to_pmem_checked(q + start, src, n);
		CHECK(rc == -1 && errno == EIO, "checked write, engine path: rc %d errno %d", rc, errno);
		snprintf(want, sizeof want, "pmem_sys_memcpy_to_pmem_checked: dst+%zu (", good);
		CHECK(strncmp(pmem_sys_errormsg(), want, strlen(want)) == 0, "message: %s", pmem_sys_errormsg());
		wmb_pmem();
		CHECK(memcmp(q + start, src, good) == 0, "engine path: the bytes before the faulting page were written");
		CHECK(pmem_sys_memcpy_to_pmem_checked(q, src, end) == 0, "engine path inside the file: %s", pmem_sys_errormsg());
		CHECK(memcmp(q, src, end) == 0, "engine path: the kept pages hold the checked write");
		munmap(q, VICTIM_PAGES * pg);
	}
	free(src);
	free(dst);
	CHECK_DONE("fault/truncate");
}
