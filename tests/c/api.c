/*
 * The C API end to end: data written with memcpy_to_pmem() + wmb_pmem() is
 * visible through read() of the file under every granularity; the mapping
 * calls keep their contracts (whole-file maps, CREATE grows and never
 * shrinks, TMPFILE, closing the fd); introspection answers.
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

static char *path_in_dir(const char *name)
{
	static char buf[512];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 131 + seed + (i >> 9));
}

/* Writes through every store call under a forced granularity, fences, and
 * reads the file back through an independent descriptor. */
static void roundtrip(const char *granularity, int want)
{
	CHECK(pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", granularity) == 0, "force %s", granularity);
	const size_t size = 1 << 20;
	size_t len;
	unsigned char __pmem *p = pmem_sys_map_file(path_in_dir(granularity), size, PMEM_SYS_FILE_CREATE, 0644, &len);
	CHECK(p != NULL, "map: %s", pmem_sys_errormsg());
	if (!p)
		return;
	CHECK(len == size, "len %zu", len);
	CHECK(pmem_sys_granularity(p, len) == want, "%s: granularity %d", granularity, pmem_sys_granularity(p, len));
	CHECK(strstr(pmem_sys_mapping_reason(p), "forced") != NULL, "reason: %s", pmem_sys_mapping_reason(p));
	CHECK(pmem_sys_is_pmem(p, len) == (want != PMEM_SYS_GRANULARITY_PAGE), "is_pmem");

	unsigned char *src = malloc(size), *back = malloc(size);
	fill(src, size, (unsigned)want);
	memcpy_to_pmem(p + 3, src, 300000);                  /* unaligned head and tail */
	pmem_sys_memmove(p + 300003, src + 300000, 100000);  /* disjoint move */
	pmem_sys_memset(p + 400003, 0x7a, 5000);
	clear_pmem(p + 405003, 4096);
	for (size_t i = 0; i < 5000; i++)
		src[400000 + i] = 0x7a;
	memset(src + 405000, 0, 4096);
	for (size_t i = 409099; i < 409099 + 100; i++)       /* ordinary stores, then write-back */
		((unsigned char *)p)[i + 4] = src[i] = (unsigned char)i;
	arch_wb_cache_pmem(p + 409103, 100);
	memcpy_to_pmem(p + 700000, src + 700000, 64);
	pmem_sys_memmove(p + 700010, p + 700000, 64);        /* overlapping, forwards in memory */
	memmove(src + 700010, src + 700000, 64);
	wmb_pmem();
	CHECK(pmem_sys_drain() == 0, "drain: %s", pmem_sys_errormsg());

	int fd = open(path_in_dir(granularity), O_RDONLY);
	CHECK(pread(fd, back, size, 0) == (ssize_t)size, "pread");
	close(fd);
	CHECK(memcmp(back + 3, src, 300000) == 0, "%s: memcpy_to_pmem data not in the file", granularity);
	CHECK(memcmp(back + 300003, src + 300000, 100000) == 0, "%s: memmove data", granularity);
	CHECK(memcmp(back + 400003, src + 400000, 5000 + 4096) == 0, "%s: memset/clear data", granularity);
	CHECK(memcmp(back + 409103, src + 409099, 100) == 0, "%s: arch_wb_cache_pmem data", granularity);
	CHECK(memcmp(back + 700000, src + 700000, 74) == 0, "%s: overlapping memmove", granularity);

	unsigned char small[37];
	CHECK(memcpy_from_pmem(small, p + 3, sizeof small) == 0, "memcpy_from_pmem");
	CHECK(memcmp(small, src, sizeof small) == 0, "memcpy_from_pmem data");
	CHECK(pmem_sys_persist(p, 4096) == 0, "persist: %s", pmem_sys_errormsg());
	arch_invalidate_pmem(p, 4096);
	CHECK(memunmap_pmem(p) == 0, "unmap");
	free(src);
	free(back);
	printf("  round trip under %s granularity: ok\n", granularity);
}

static void mapping_contracts(void)
{
	CHECK(pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", NULL) == 0, "unforce");
	CHECK(strcmp(pmem_sys_get_option("PMEM_SYS_FORCE_GRANULARITY"), "") == 0, "unforced reads as empty");
	size_t len;
	/* CREATE makes a file of the size; an existing longer file is never
	 * shrunk; a shorter one is grown. */
	void __pmem *p = pmem_sys_map_file(path_in_dir("grow"), 8192, PMEM_SYS_FILE_CREATE, 0600, &len);
	CHECK(p && len == 8192, "create 8192");
	struct stat st;
	stat(path_in_dir("grow"), &st);
	CHECK(st.st_size == 8192 && (st.st_mode & 0777) == 0600, "size %lld mode %o", (long long)st.st_size,
	      st.st_mode & 0777);
	memunmap_pmem(p);
	p = pmem_sys_map_file(path_in_dir("grow"), 4096, PMEM_SYS_FILE_CREATE, 0600, &len);
	stat(path_in_dir("grow"), &st);
	CHECK(p && len == 4096 && st.st_size == 8192, "CREATE shrank the file to %lld", (long long)st.st_size);
	CHECK(pmem_sys_mapping_size(p) == 4096, "mapping_size %zu", pmem_sys_mapping_size(p));
	memunmap_pmem(p);
	p = pmem_sys_map_file(path_in_dir("grow"), 20000, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_SPARSE, 0600, NULL);
	stat(path_in_dir("grow"), &st);
	CHECK(p && st.st_size == 20000, "grow to 20000: %lld", (long long)st.st_size);
	CHECK(pmem_sys_mapping_size(p) == 20000, "size as asked, not page-rounded: %zu", pmem_sys_mapping_size(p));
	memunmap_pmem(p);
	/* size 0 without CREATE maps the whole file; NULL mapped_size is fine. */
	p = pmem_sys_map_file(path_in_dir("grow"), 0, 0, 0, NULL);
	CHECK(p && pmem_sys_mapping_size(p) == 20000, "whole file");
	memunmap_pmem(p);
	/* TMPFILE: an unnamed file in the directory. */
	p = pmem_sys_map_file(dir, 1 << 21, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_TMPFILE, 0600, &len);
	CHECK(p && len == (1u << 21), "tmpfile: %s", pmem_sys_errormsg());
	if (p) {
		CHECK(((uintptr_t)p & ((1u << 21) - 1)) == 0, "2 MiB mapping not 2 MiB aligned: %p", (void *)p);
		memcpy_to_pmem(p, "tmp", 3);
		wmb_pmem();
		memunmap_pmem(p);
	}
	/* memremap_pmem with an offset; the fd can be closed right away. */
	int fd = open(path_in_dir("grow"), O_RDWR);
	char __pmem *q = memremap_pmem(fd, 4096, 8192);
	close(fd);
	CHECK(q != NULL, "memremap: %s", pmem_sys_errormsg());
	if (q) {
		memcpy_to_pmem(q, "offset", 6);
		CHECK(pmem_sys_drain() == 0, "drain");
		char buf[6];
		fd = open(path_in_dir("grow"), O_RDONLY);
		pread(fd, buf, 6, 4096);
		close(fd);
		CHECK(memcmp(buf, "offset", 6) == 0, "memremap offset lands at file offset 4096");
		CHECK(pmem_sys_granularity(q + 100, 100) == PMEM_SYS_GRANULARITY_PAGE, "tmp files are page granular here");
		CHECK(strstr(pmem_sys_mapping_reason(q + 5), "MAP_SYNC refused") != NULL, "reason %s",
		      pmem_sys_mapping_reason(q + 5));
		CHECK(memunmap_pmem(q) == 0, "unmap");
	}
	/* Anonymous memory (not mapped by the library) is treated as cache-line. */
	static unsigned char anon[4096];
	memcpy_to_pmem(anon + 1, "anonymous", 9);
	wmb_pmem();
	CHECK(memcmp(anon + 1, "anonymous", 9) == 0, "anonymous copy");
	/* n == 0 accepts NULL. */
	memcpy_to_pmem(NULL, NULL, 0);
	clear_pmem(NULL, 0);
	pmem_sys_memset(NULL, 0, 0);
	pmem_sys_memmove(NULL, NULL, 0);
	arch_wb_cache_pmem(NULL, 0);
	CHECK(memcpy_from_pmem(NULL, NULL, 0) == 0, "from_pmem n=0");
}

static void introspection(void)
{
	CHECK(arch_has_pmem_api() && arch_has_wmb_pmem(), "x86_64 has the pmem API");
	const char *impl = pmem_sys_impl();
	CHECK(strncmp(impl, "x86_64/", 7) == 0 && strchr(impl, '+') != NULL, "impl %s", impl);
	char version[32];
	snprintf(version, sizeof version, "%d.%d.%d", PMEM_SYS_VERSION_MAJOR, PMEM_SYS_VERSION_MINOR,
		 PMEM_SYS_VERSION_PATCH);
	CHECK(strcmp(version, pmem_sys_version()) == 0 && strcmp(PMEM_SYS_VERSION_STRING, version) == 0,
	      "version %s vs %s", version, pmem_sys_version());
	CHECK(strstr(pmem_sys_cpu_features(), "sse2") != NULL, "features %s", pmem_sys_cpu_features());
	CHECK(pmem_sys_errormsg() != NULL, "errormsg never NULL");
	/* A run-time knob change re-selects the table, and shows in the report. */
	CHECK(pmem_sys_set_option("PMEM_SYS_NO_MOVNT", "1") == 0, "set NO_MOVNT");
	CHECK(strstr(pmem_sys_impl(), "/temporal+") != NULL, "impl after NO_MOVNT: %s", pmem_sys_impl());
	CHECK(strstr(pmem_sys_knobs(), "PMEM_SYS_NO_MOVNT=1 (set at run time)") != NULL, "knobs: %s", pmem_sys_knobs());
	CHECK(strcmp(pmem_sys_get_option("PMEM_SYS_NO_MOVNT"), "1") == 0, "get NO_MOVNT");
	CHECK(pmem_sys_set_option("PMEM_SYS_NO_MOVNT", "0") == 0, "unset NO_MOVNT");
	CHECK(strcmp(pmem_sys_impl(), impl) == 0, "impl restored: %s", pmem_sys_impl());
	CHECK(pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", "4096") == 0 && pmem_sys_movnt_threshold() == 4096,
	      "threshold");
	CHECK(strcmp(pmem_sys_get_option("PMEM_SYS_MOVNT_THRESHOLD"), "4096") == 0, "get threshold");
	CHECK(pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", NULL) == 0, "threshold default");
	CHECK(strcmp(pmem_sys_get_option("PMEM_SYS_SYSFS_ROOT"), "/sys") == 0, "sysfs root default");
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/pmem-sys-api-XXXXXX", tmp);
	if (!mkdtemp(dir))
		return 2;
	introspection();
	roundtrip("cache_line", PMEM_SYS_GRANULARITY_CACHE_LINE);
	roundtrip("byte", PMEM_SYS_GRANULARITY_BYTE);
	roundtrip("page", PMEM_SYS_GRANULARITY_PAGE);
	mapping_contracts();
	const char *names[] = {"cache_line", "byte", "page", "grow"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		unlink(path_in_dir(names[i]));
	rmdir(dir);
	CHECK_DONE("api");
}
