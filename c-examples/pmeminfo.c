/*
 * pmeminfo: what the library sees on this machine.
 *
 *   pmeminfo [PATH...]
 *
 * Prints the CPU features detected, the operation table selected, the
 * non-temporal threshold and the knobs in force; then, for each PATH, the
 * store granularity a mapping of it gets and why. A directory is probed
 * with an unnamed temporary file inside it.
 */
#define _POSIX_C_SOURCE 200809L
#include <pmem.h>

#include <stdio.h>
#include <sys/stat.h>

static const char *granularity_name(int g)
{
	switch (g) {
	case PMEM_SYS_GRANULARITY_BYTE: return "byte";
	case PMEM_SYS_GRANULARITY_CACHE_LINE: return "cache_line";
	case PMEM_SYS_GRANULARITY_PAGE: return "page";
	default: return "unknown";
	}
}

static int probe(const char *path)
{
	struct stat st;
	unsigned flags = 0;
	size_t size = 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		flags = PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_TMPFILE;
		size = 4096;
	} else if (stat(path, &st) != 0) {
		flags = PMEM_SYS_FILE_CREATE;
		size = 4096;
	}
	size_t len;
	void __pmem *p = pmem_sys_map_file(path, size, flags, 0644, &len);
	if (p == NULL) {
		printf("%s: error: %s\n", path, pmem_sys_errormsg());
		return 1;
	}
	int g = pmem_sys_granularity(p, len);
	printf("%s: granularity %s (is_pmem %s)\n  reason: %s\n", path, granularity_name(g),
	       pmem_sys_is_pmem(p, len) ? "yes" : "no", pmem_sys_mapping_reason(p));
	memunmap_pmem(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *knobs = pmem_sys_knobs();
	printf("pmem-sys %s\n", pmem_sys_version());
	printf("cpu features:   %s\n", pmem_sys_cpu_features());
	printf("implementation: %s\n", pmem_sys_impl());
	printf("nt threshold:   %zu bytes\n", pmem_sys_movnt_threshold());
	printf("pmem api:       %s\n", arch_has_pmem_api() ? "yes" : "no");
	printf("knobs:          %s\n", knobs[0] ? "" : "(none)");
	if (knobs[0])
		printf("  %s\n", knobs);

	int rc = 0;
	for (int i = 1; i < argc; i++)
		rc |= probe(argv[i]);
	return rc;
}
