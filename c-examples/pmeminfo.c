/*
 * pmeminfo: what the library sees on this machine.
 *
 *   pmeminfo [PATH...]
 *   pmeminfo --version
 *
 * Prints the CPU features detected, the operation table selected, the
 * non-temporal threshold and the knobs in force; then, for each PATH, the
 * store granularity a mapping of it gets and why.
 *
 * It never creates or modifies anything: an existing file or device-DAX
 * node is opened and mapped read-only (PMEM_SYS_FILE_RDONLY), so reading
 * it is enough; a directory is probed with an unnamed temporary file inside
 * it (O_TMPFILE, sparse: no block is allocated and nothing is left behind;
 * this needs write permission on the directory); a missing path is an
 * error. The exit status is 1 when any PATH failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <pmem.h>

#include <stdio.h>
#include <string.h>
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
	unsigned flags = PMEM_SYS_FILE_RDONLY;
	size_t size = 0; /* the whole file */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		flags = PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_TMPFILE | PMEM_SYS_FILE_SPARSE;
		size = 4096;
	}
	size_t len;
	void __pmem *p = pmem_sys_map_file(path, size, flags, 0600, &len);
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
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("pmeminfo (pmem-sys %s)\n", pmem_sys_version());
		return 0;
	}
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s [PATH...] | --version\n"
		       "Prints what pmem-sys sees on this CPU, then each PATH's granularity and why;\n"
		       "opens files read-only and never creates or modifies anything.\n",
		       argv[0]);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	else if (argc > 1 && argv[1][0] == '-' && argv[1][1] != '\0') {
		fprintf(stderr, "%s: unknown option %s (try --help)\n", argv[0], argv[1]);
		return 2;
	}
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
	for (int i = first; i < argc; i++)
		rc |= probe(argv[i]);
	return rc;
}
