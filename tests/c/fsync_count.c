/*
 * Durable creation (issue 15 item 7): when pmem_sys_map_file() creates or
 * grows a file, the file's size and its directory entry are made durable
 * before the call returns. This program defines fsync() itself, so the
 * library's calls resolve to it (an executable's symbols come first in the
 * dynamic lookup scope), records what each call synced (the descriptor's
 * path) and forwards to libc.
 *
 *   created           fsync of the file, then of its directory
 *   grown             fsync of the file only (the entry did not change)
 *   already big enough, or opened without CREATE, or memremap_pmem
 *                     no fsync at all
 *   TMPFILE           fsync of the file (it has no name to make durable)
 *   fsync fails       NULL with errno EIO, and a file the call created is
 *                     gone again (a refused call changes nothing)
 */
#define _GNU_SOURCE
#include <pmem.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define MAX_CALLS 16
static char synced[MAX_CALLS][600];
static int ncalls;
static int fail_call; /* fail the call with this 1-based number (EIO); 0: none */

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync"); /* the POSIX idiom for function pointers */
	if (ncalls < MAX_CALLS) {
		char link[64];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, synced[ncalls], sizeof synced[0] - 1);
		synced[ncalls][n > 0 ? n : 0] = '\0';
	}
	ncalls++;
	if (fail_call == ncalls) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}

static char dir[256];

static void expect_syncs(const char *what, int n, const char *first, const char *second)
{
	CHECK(ncalls == n, "%s: %d fsync calls, want %d", what, ncalls, n);
	if (first && ncalls >= 1)
		CHECK(strcmp(synced[0], first) == 0, "%s: first fsync of \"%s\", want \"%s\"", what, synced[0], first);
	if (second && ncalls >= 2)
		CHECK(strcmp(synced[1], second) == 0, "%s: second fsync of \"%s\", want \"%s\"", what, synced[1],
		      second);
	printf("  %-40s %d fsync%s%s%s%s%s\n", what, ncalls, ncalls ? ": " : "", ncalls ? synced[0] : "",
	       ncalls > 1 ? ", " : "", ncalls > 1 ? synced[1] : "", ncalls > 2 ? ", ..." : "");
	ncalls = 0;
}

int main(void)
{
	char path[600], tmpdir_real[512];
	size_t len;
	snprintf(dir, sizeof dir, "/tmp/pmem-sys-fsync-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	/* readlink reports the canonical path. */
	if (!realpath(dir, tmpdir_real)) {
		perror("realpath");
		return 1;
	}
	snprintf(path, sizeof path, "%s/f", tmpdir_real);

	ncalls = 0;
	void __pmem *p = pmem_sys_map_file(path, 8192, PMEM_SYS_FILE_CREATE, 0644, &len);
	CHECK(p != NULL, "create: %s", pmem_sys_errormsg());
	expect_syncs("created", 2, path, tmpdir_real);
	if (p)
		memunmap_pmem(p);

	p = pmem_sys_map_file(path, 8192, PMEM_SYS_FILE_CREATE, 0644, &len);
	CHECK(p != NULL, "reopen: %s", pmem_sys_errormsg());
	expect_syncs("CREATE, already 8192 bytes", 0, NULL, NULL);
	if (p)
		memunmap_pmem(p);

	p = pmem_sys_map_file(path, 0, 0, 0, &len);
	CHECK(p != NULL, "open: %s", pmem_sys_errormsg());
	expect_syncs("opened without CREATE", 0, NULL, NULL);
	if (p)
		memunmap_pmem(p);

	p = pmem_sys_map_file(path, 16384, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_SPARSE, 0644, &len);
	CHECK(p != NULL, "grow: %s", pmem_sys_errormsg());
	expect_syncs("grown (sparse)", 1, path, NULL);
	if (p)
		memunmap_pmem(p);

	int fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open");
	p = memremap_pmem(fd, 0, 4096);
	CHECK(p != NULL, "memremap: %s", pmem_sys_errormsg());
	expect_syncs("memremap_pmem", 0, NULL, NULL);
	if (p)
		memunmap_pmem(p);
	close(fd);

	p = pmem_sys_map_file(tmpdir_real, 4096, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_TMPFILE, 0600, &len);
	CHECK(p != NULL, "tmpfile: %s", pmem_sys_errormsg());
	expect_syncs("TMPFILE", 1, NULL, NULL);
	CHECK(strstr(synced[0], "(deleted)") != NULL || strncmp(synced[0], tmpdir_real, strlen(tmpdir_real)) == 0,
	      "TMPFILE synced \"%s\"", synced[0]);
	if (p)
		memunmap_pmem(p);

	/* A failing fsync, of the file (1) or of the directory (2): refused
	 * with EIO, and the file the call created is gone again. */
	char path2[600];
	snprintf(path2, sizeof path2, "%s/g", tmpdir_real);
	for (int which = 1; which <= 2; which++) {
		ncalls = 0;
		fail_call = which;
		errno = 0;
		void __pmem *q = pmem_sys_map_file(path2, 4096, PMEM_SYS_FILE_CREATE, 0644, &len);
		int err = errno;
		fail_call = 0;
		CHECK(q == NULL, "create with fsync %d failing succeeded", which);
		CHECK(err == EIO, "fsync %d failing: errno %d, want EIO", which, err);
		CHECK(strstr(pmem_sys_errormsg(), "fsync") != NULL, "message \"%s\" lacks fsync", pmem_sys_errormsg());
		CHECK(access(path2, F_OK) != 0, "fsync %d failing: the refused call left %s behind", which, path2);
		printf("  failing fsync %d: %s\n", which, pmem_sys_errormsg());
		if (q)
			memunmap_pmem(q);
	}

	unlink(path);
	unlink(path2);
	rmdir(dir);
	CHECK_DONE("fsync_count");
}
