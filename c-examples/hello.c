/*
 * hello: the smallest complete use of the pmem API.
 *
 *   hello FILE
 *
 * Creates (or opens) FILE, maps 4 KiB of it, copies a greeting into it
 * with memcpy_to_pmem(), makes it durable with pmem_sys_drain() (wmb_pmem()
 * that reports a failed msync), and reads it back with memcpy_from_pmem().
 * The same code is correct on persistent memory (flush + fence) and on an
 * ordinary file (the fence msyncs).
 */
#define _POSIX_C_SOURCE 200809L
#include <pmem.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *granularity_name(int g)
{
	switch (g) {
	case PMEM_SYS_GRANULARITY_BYTE: return "byte";
	case PMEM_SYS_GRANULARITY_CACHE_LINE: return "cache_line";
	case PMEM_SYS_GRANULARITY_PAGE: return "page";
	default: return "unknown";
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}

	size_t len;
	void __pmem *pmem = pmem_sys_map_file(argv[1], 4096, PMEM_SYS_FILE_CREATE, 0644, &len);
	if (pmem == NULL) {
		fprintf(stderr, "hello: %s (errno %d)\n", pmem_sys_errormsg(), errno);
		return 1;
	}

	static const char greeting[] = "Hello, persistent memory!";
	memcpy_to_pmem(pmem, greeting, sizeof greeting); /* on its way to the media */
	if (pmem_sys_drain() != 0) {                     /* wmb_pmem() that reports msync failures */
		fprintf(stderr, "hello: %s\n", pmem_sys_errormsg());
		return 1;
	}

	char back[sizeof greeting];
	if (memcpy_from_pmem(back, pmem, sizeof back) != 0) { /* EIO after a bus error */
		fprintf(stderr, "hello: %s\n", pmem_sys_errormsg());
		return 1;
	}
	printf("wrote and read back: \"%s\"\n", back);
	printf("mapped %zu bytes, granularity %s, implementation %s\n", len,
	       granularity_name(pmem_sys_granularity(pmem, len)), pmem_sys_impl());
	printf("why: %s\n", pmem_sys_mapping_reason(pmem));

	int ok = memcmp(back, greeting, sizeof greeting) == 0;
	if (memunmap_pmem(pmem) != 0) {
		fprintf(stderr, "hello: %s\n", pmem_sys_errormsg());
		return 1;
	}
	return ok ? 0 : 1;
}
