/*
 * Counting msync calls. This program defines msync() itself, so the
 * library's calls resolve to it (an executable's symbols come first in the
 * dynamic lookup scope); it records each range and forwards to libc.
 *
 * After memcpy_to_pmem() + wmb_pmem() on a page-granular mapping, every
 * dirty page is synced exactly once (adjacent dirty pages may share a
 * call) and no clean page is; on a cache-line mapping there is no msync at
 * all. A failing msync inside wmb_pmem() is reported by pmem_sys_drain()
 * and by the next pmem_sys_persist().
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define MAX_CALLS 256
static struct {
	uintptr_t addr;
	size_t len;
} calls[MAX_CALLS];
static int ncalls;
static int fail_next; /* errno to fail the next msync with */

int msync(void *addr, size_t len, int flags)
{
	static int (*real)(void *, size_t, int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "msync"); /* the POSIX idiom for function pointers */
	if (ncalls < MAX_CALLS) {
		calls[ncalls].addr = (uintptr_t)addr;
		calls[ncalls].len = len;
	}
	ncalls++;
	if (fail_next) {
		errno = fail_next;
		fail_next = 0;
		return -1;
	}
	return real(addr, len, flags);
}

/* How many recorded calls covered page `pg` of the mapping at `base`. */
static int times_synced(uintptr_t base, size_t page, size_t pg)
{
	uintptr_t a = base + pg * page;
	int n = 0;
	for (int i = 0; i < ncalls && i < MAX_CALLS; i++)
		n += a >= calls[i].addr && a < calls[i].addr + calls[i].len;
	return n;
}

int main(void)
{
	char path[] = "/tmp/pmem-sys-msync-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 2;
	close(fd);
	const size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = 32;
	unsigned char buf[3 * 4096];
	memset(buf, 0x42, sizeof buf);

	CHECK(pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", "page") == 0, "force page");
	unsigned char __pmem *p = pmem_sys_map_file(path, npages * page, PMEM_SYS_FILE_CREATE, 0600, NULL);
	CHECK(p != NULL, "map: %s", pmem_sys_errormsg());
	if (!p)
		return 1;

	/* Dirty: page 1 and 2 (one copy across the boundary), page 5 (two
	 * small copies), page 9 (memset), pages 20-22 (one large copy), page
	 * 30 (arch_wb_cache_pmem after ordinary stores). */
	static const int dirty[] = {1, 2, 5, 9, 20, 21, 22, 30};
	ncalls = 0;
	memcpy_to_pmem(p + 1 * page + page - 10, buf, 20);
	memcpy_to_pmem(p + 5 * page + 100, buf, 8);
	memcpy_to_pmem(p + 5 * page + 3000, buf, 8);
	pmem_sys_memset(p + 9 * page + 1, 0, 100);
	memcpy_to_pmem(p + 20 * page, buf, 3 * page);
	((unsigned char *)p)[30 * page + 7] = 1;
	arch_wb_cache_pmem(p + 30 * page + 7, 1);
	CHECK(ncalls == 0, "msync before the fence: %d calls", ncalls);
	wmb_pmem();
	printf("msync_count: %d msync call(s) for 8 dirty pages in 5 runs\n", ncalls);
	for (size_t pg = 0; pg < npages; pg++) {
		int want = 0;
		for (size_t i = 0; i < sizeof dirty / sizeof dirty[0]; i++)
			want |= (size_t)dirty[i] == pg;
		int got = times_synced((uintptr_t)p, page, pg);
		CHECK(got == want, "page %zu synced %d times, want %d", pg, got, want);
	}
	CHECK(ncalls <= 5, "%d calls for 5 runs of dirty pages", ncalls);

	/* A second fence with nothing dirty syncs nothing. */
	ncalls = 0;
	wmb_pmem();
	CHECK(ncalls == 0, "clean fence made %d calls", ncalls);

	/* A failing msync inside the void wmb_pmem() is kept and reported. */
	memcpy_to_pmem(p, buf, 8);
	fail_next = EIO;
	wmb_pmem();
	errno = 0;
	CHECK(pmem_sys_drain() == -1 && errno == EIO, "drain after a failed msync: errno %d", errno);
	CHECK(strstr(pmem_sys_errormsg(), "msync") != NULL, "message %s", pmem_sys_errormsg());
	CHECK(pmem_sys_drain() == 0, "the failure is reported once");
	memcpy_to_pmem(p, buf, 8);
	fail_next = EIO;
	wmb_pmem();
	errno = 0;
	CHECK(pmem_sys_persist(p + page, 8) == -1 && errno == EIO, "persist reports the earlier failure");
	/* pmem_sys_persist on a page mapping msyncs the range directly. */
	ncalls = 0;
	CHECK(pmem_sys_persist(p + 3 * page + 5, 10) == 0, "persist");
	CHECK(ncalls == 1 && calls[0].addr == (uintptr_t)p + 3 * page && calls[0].len == page,
	      "persist msync: %d calls", ncalls);
	/* Unmapping with dirty pages and no fence: this thread's dirty pages
	 * are synced first (once), not forgotten or synced later at an
	 * address that may belong to another mapping by then. */
	memcpy_to_pmem(p + 7 * page, buf, 8);
	ncalls = 0;
	CHECK(memunmap_pmem(p) == 0, "unmap");
	CHECK(ncalls == 1 && calls[0].addr == (uintptr_t)p + 7 * page && calls[0].len == page,
	      "unmap synced %d ranges", ncalls);
	ncalls = 0;
	wmb_pmem();
	CHECK(ncalls == 0, "a fence after the unmap synced %d stale ranges", ncalls);

	/* A cache-line mapping: no msync at all. */
	CHECK(pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", "cache_line") == 0, "force cache_line");
	p = pmem_sys_map_file(path, 0, 0, 0, NULL);
	CHECK(p != NULL, "map cache_line");
	ncalls = 0;
	memcpy_to_pmem(p, buf, sizeof buf);
	pmem_sys_memset(p + 5 * page, 1, 100);
	wmb_pmem();
	CHECK(pmem_sys_persist(p, 100) == 0, "persist");
	CHECK(ncalls == 0, "cache-line mapping made %d msync calls", ncalls);
	memunmap_pmem(p);
	unlink(path);
	CHECK_DONE("msync_count");
}
