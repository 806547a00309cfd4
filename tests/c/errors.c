/*
 * The error table: every refused call returns NULL or -1, sets errno,
 * names the call, the argument and the reason in pmem_sys_errormsg(), and
 * changes nothing (no mapping left behind, no file created, truncated or
 * modified).
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

/* Mappings a refused call could leave behind: shared mappings (a file
 * mapped by the library) and inaccessible ones (an address reservation).
 * Private read-write mappings are left out: allocators create those on
 * their own at any time. AddressSanitizer's allocator also reserves
 * inaccessible regions as it goes, so under it only shared mappings are
 * counted (the unsanitized run covers reservations). */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	int n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
#ifdef __SANITIZE_ADDRESS__
		const int count_reservations = 0;
#else
		const int count_reservations = 1;
#endif
		if (sscanf(line, "%*s %7s", perms) == 1 &&
		    (perms[3] == 's' || (count_reservations && strcmp(perms, "---p") == 0)))
			n++;
	}
	fclose(f);
	return n;
}

static void expect_failure(const char *what, int failed, int errno_got, int want1, int want2,
			   const char *call, const char *fragment, int maps_before)
{
	const char *msg = pmem_sys_errormsg();
	CHECK(failed, "%s: the call succeeded", what);
	CHECK(errno_got == want1 || errno_got == want2, "%s: errno %d (%s), want %d or %d", what,
	      errno_got, strerror(errno_got), want1, want2);
	CHECK(msg != NULL && strncmp(msg, call, strlen(call)) == 0, "%s: message \"%s\" does not start with %s", what,
	      msg ? msg : "(null)", call);
	CHECK(msg != NULL && strstr(msg, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
	      msg ? msg : "(null)", fragment);
	CHECK(count_maps() <= maps_before, "%s: a mapping was left behind", what);
	printf("  %-44s errno %-3d %s\n", what, errno_got, msg ? msg : "");
}

#define EXPECT_NULL(what, expr, e1, e2, call, frag)                                     \
	do {                                                                            \
		int maps_ = count_maps();                                               \
		errno = 0;                                                              \
		void __pmem *r_ = (expr);                                               \
		int err_ = errno;                                                       \
		expect_failure(what, r_ == NULL, err_, e1, e2, call, frag, maps_);      \
	} while (0)

#define EXPECT_MINUS1(what, expr, e1, e2, call, frag)                                   \
	do {                                                                            \
		int maps_ = count_maps();                                               \
		errno = 0;                                                              \
		long r_ = (long)(expr);                                                 \
		int err_ = errno;                                                       \
		expect_failure(what, r_ == -1, err_, e1, e2, call, frag, maps_);        \
	} while (0)

static char *path_in_dir(const char *name)
{
	static char buf[512];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

static int make_file(const char *name, size_t size, char fill)
{
	int fd = open(path_in_dir(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(size);
	memset(buf, fill, size);
	if (write(fd, buf, size) != (ssize_t)size)
		abort();
	free(buf);
	return fd;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/pmem-sys-errors-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	printf("errors: the error table\n");

	/* memremap_pmem: descriptors */
	EXPECT_NULL("fd -1", memremap_pmem(-1, 0, 4096), EBADF, EBADF, "memremap_pmem", "fd -1");
	int closed = make_file("closed", 4096, 'c');
	close(closed);
	EXPECT_NULL("closed fd", memremap_pmem(closed, 0, 4096), EBADF, EBADF, "memremap_pmem", "fstat");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	EXPECT_NULL("directory (opened read-only)", memremap_pmem(dfd, 0, 4096), EINVAL, ENODEV, "memremap_pmem",
		    "a directory");
	close(dfd);
	int pfd[2];
	if (pipe(pfd) != 0)
		abort();
	EXPECT_NULL("pipe", memremap_pmem(pfd[1], 0, 4096), EINVAL, ENODEV, "memremap_pmem", "a pipe");
	close(pfd[0]);
	close(pfd[1]);
	int rw = make_file("data", 8192, 'd');
	int ro = open(path_in_dir("data"), O_RDONLY);
	EXPECT_NULL("regular file opened read-only", memremap_pmem(ro, 0, 4096), EACCES, EACCES, "memremap_pmem",
		    "read-only");
	close(ro);
	int wo = open(path_in_dir("data"), O_WRONLY);
	EXPECT_NULL("regular file opened write-only", memremap_pmem(wo, 0, 4096), EACCES, EACCES, "memremap_pmem",
		    "write-only");
	close(wo);

	/* memremap_pmem: ranges */
	EXPECT_NULL("size 0", memremap_pmem(rw, 0, 0), EINVAL, EINVAL, "memremap_pmem", "size 0");
	EXPECT_NULL("offset not page aligned", memremap_pmem(rw, 100, 4096), EINVAL, EINVAL, "memremap_pmem",
		    "offset 100");
	EXPECT_NULL("offset + size overflows", memremap_pmem(rw, UINT64_MAX - 4095, 8192), EINVAL, EOVERFLOW,
		    "memremap_pmem", "overflows");
	EXPECT_NULL("offset + size overflows off_t", memremap_pmem(rw, (uint64_t)INT64_MAX - 4095, 8192), EINVAL,
		    EOVERFLOW, "memremap_pmem", "overflows");
	EXPECT_NULL("range past the end of the file", memremap_pmem(rw, 4096, 8192), EINVAL, EINVAL,
		    "memremap_pmem", "past the end");

	/* pmem_sys_map_file */
	EXPECT_NULL("unknown flag bits", pmem_sys_map_file(path_in_dir("data"), 0, 0x100, 0644, NULL), EINVAL,
		    EINVAL, "pmem_sys_map_file", "unknown bits 0x100");
	EXPECT_NULL("NULL path", pmem_sys_map_file(NULL, 4096, PMEM_SYS_FILE_CREATE, 0644, NULL), EINVAL, EINVAL,
		    "pmem_sys_map_file", "path NULL");
	EXPECT_NULL("empty path", pmem_sys_map_file("", 4096, PMEM_SYS_FILE_CREATE, 0644, NULL), EINVAL, EINVAL,
		    "pmem_sys_map_file", "empty");
	EXPECT_NULL("missing file without CREATE", pmem_sys_map_file(path_in_dir("missing"), 0, 0, 0644, NULL),
		    ENOENT, ENOENT, "pmem_sys_map_file", "missing");
	CHECK(access(path_in_dir("missing"), F_OK) != 0, "a refused open created the file");
	EXPECT_NULL("CREATE|EXCL on an existing file",
		    pmem_sys_map_file(path_in_dir("data"), 4096, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_EXCL, 0644, NULL),
		    EEXIST, EEXIST, "pmem_sys_map_file", "exists");
	struct stat st;
	stat(path_in_dir("data"), &st);
	CHECK(st.st_size == 8192, "EEXIST changed the size to %lld", (long long)st.st_size);
	char first;
	pread(rw, &first, 1, 0);
	CHECK(first == 'd', "EEXIST changed the content");
	EXPECT_NULL("EXCL without CREATE", pmem_sys_map_file(path_in_dir("data"), 4096, PMEM_SYS_FILE_EXCL, 0644, NULL),
		    EINVAL, EINVAL, "pmem_sys_map_file", "require");
	EXPECT_NULL("TMPFILE on a regular file",
		    pmem_sys_map_file(path_in_dir("data"), 4096, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_TMPFILE, 0644, NULL),
		    EINVAL, ENOTDIR, "pmem_sys_map_file", "O_TMPFILE");
	EXPECT_NULL("size larger than the file, no CREATE", pmem_sys_map_file(path_in_dir("data"), 16384, 0, 0644, NULL),
		    EINVAL, EINVAL, "pmem_sys_map_file", "past the end");
	EXPECT_NULL("CREATE with size 0", pmem_sys_map_file(path_in_dir("new0"), 0, PMEM_SYS_FILE_CREATE, 0644, NULL),
		    EINVAL, EINVAL, "pmem_sys_map_file", "size 0");
	CHECK(access(path_in_dir("new0"), F_OK) != 0, "CREATE with size 0 left a file");
	/* A size no filesystem can allocate: the OS errno, and the file this
	 * call created is removed again. */
	errno = 0;
	void __pmem *huge = pmem_sys_map_file(path_in_dir("huge"), (size_t)1 << 62, PMEM_SYS_FILE_CREATE, 0644, NULL);
	int huge_errno = errno;
	CHECK(huge == NULL, "a 4 EiB file was created");
	CHECK(huge_errno == EFBIG || huge_errno == ENOSPC || huge_errno == EINVAL, "huge: errno %d", huge_errno);
	CHECK(strstr(pmem_sys_errormsg(), "growing the file") != NULL, "huge: message %s", pmem_sys_errormsg());
	CHECK(access(path_in_dir("huge"), F_OK) != 0, "the file created by a failed call was not removed");
	printf("  %-44s errno %-3d %s\n", "size that cannot be allocated", huge_errno, pmem_sys_errormsg());
	/* Growing an existing file that fails leaves it as it was. */
	errno = 0;
	huge = pmem_sys_map_file(path_in_dir("data"), (size_t)1 << 62, PMEM_SYS_FILE_CREATE, 0644, NULL);
	CHECK(huge == NULL, "grew data to 4 EiB");
	stat(path_in_dir("data"), &st);
	CHECK(st.st_size == 8192, "a failed grow left size %lld", (long long)st.st_size);

	/* memunmap_pmem */
	size_t len = 0;
	char __pmem *m = pmem_sys_map_file(path_in_dir("data"), 0, 0, 0, &len);
	CHECK(m != NULL && len == 8192, "map data: %s", pmem_sys_errormsg());
	EXPECT_MINUS1("memunmap_pmem(NULL)", memunmap_pmem(NULL), EINVAL, EINVAL, "memunmap_pmem", "NULL");
	EXPECT_MINUS1("memunmap_pmem inside a mapping", memunmap_pmem(m + 4096), EINVAL, EINVAL, "memunmap_pmem",
		      "not its start");
	int local;
	EXPECT_MINUS1("memunmap_pmem of an unknown address", memunmap_pmem((void __pmem *)&local), EINVAL, EINVAL,
		      "memunmap_pmem", "not a mapping of this library");

	/* queries */
	EXPECT_MINUS1("granularity of an unknown range", pmem_sys_granularity((void __pmem *)&local, 4), EINVAL, EINVAL,
		      "pmem_sys_granularity", "not inside one mapping");
	EXPECT_MINUS1("granularity past the end of a mapping", pmem_sys_granularity(m + 4096, 8192), EINVAL, EINVAL,
		      "pmem_sys_granularity", "not inside one mapping");
	errno = 0;
	CHECK(pmem_sys_mapping_size(m + 1) == 0 && errno == EINVAL, "mapping_size inside: errno %d", errno);
	errno = 0;
	CHECK(pmem_sys_mapping_reason((void __pmem *)&local) == NULL && errno == EINVAL, "reason of unknown");
	errno = 0;
	CHECK(!pmem_sys_is_pmem((void __pmem *)&local, 1) && errno == EINVAL, "is_pmem of unknown");

	CHECK(memunmap_pmem(m) == 0, "unmap: %s", pmem_sys_errormsg());
	EXPECT_MINUS1("memunmap_pmem twice", memunmap_pmem(m), EINVAL, EINVAL, "memunmap_pmem", "already unmapped");

	/* options */
	const char *before = pmem_sys_get_option("PMEM_SYS_NO_AVX2");
	char saved[8];
	snprintf(saved, sizeof saved, "%s", before ? before : "?");
	EXPECT_MINUS1("set_option unknown name", pmem_sys_set_option("PMEM_SYS_NO_AVX3", "1"), EINVAL, EINVAL,
		      "pmem_sys_set_option", "PMEM_SYS_NO_AVX3");
	EXPECT_MINUS1("set_option malformed value", pmem_sys_set_option("PMEM_SYS_NO_AVX2", "yes"), EINVAL, EINVAL,
		      "pmem_sys_set_option", "expected 1");
	EXPECT_MINUS1("set_option NULL name", pmem_sys_set_option(NULL, "1"), EINVAL, EINVAL, "pmem_sys_set_option",
		      "name NULL");
	CHECK(strcmp(pmem_sys_get_option("PMEM_SYS_NO_AVX2"), saved) == 0, "a refused set_option changed the value");
	errno = 0;
	CHECK(pmem_sys_get_option("PMEM_SYS_NOPE") == NULL && errno == EINVAL, "get_option unknown name");

	close(rw);
	unlink(path_in_dir("closed"));
	unlink(path_in_dir("data"));
	rmdir(dir);
	CHECK_DONE("errors");
}
