/* Shared by the fault tests: a mapping whose file is truncated under it
 * through a second descriptor, and a SIGBUS handler of the program's own
 * that counts faults and puts a fresh anonymous page where the faulting
 * one was, so the faulting instruction succeeds when retried. */
#ifndef PMEM_SYS_FAULT_VICTIM_H
#define PMEM_SYS_FAULT_VICTIM_H

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Seconds a forked child may run: one that keeps re-faulting is killed by
 * SIGALRM, so its test fails instead of hanging. */
#ifndef CHILD_TIMEOUT
#define CHILD_TIMEOUT 60
#endif

#include "check.h"

#define VICTIM_PAGES 4
/* Pages the file keeps; pages VICTIM_KEPT.. raise SIGBUS. */
#define VICTIM_KEPT 2

static inline unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Maps a fresh file of VICTIM_PAGES pages with @map_file (the library's
 * pmem_sys_map_file, passed in so the dlopen test can use dlsym), fills it,
 * and truncates the file to VICTIM_KEPT pages through another descriptor.
 * Returns the mapping; exits on setup failure. */
typedef void *(*map_file_fn)(const char *, size_t, unsigned, mode_t, size_t *);

static inline unsigned char *victim_map(map_file_fn map_file, const char *(*errormsg)(void))
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/pmem-sys-fault-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	close(fd);
	size_t len = VICTIM_PAGES * page_size(), mapped = 0;
	unsigned char *p = map_file(path, len, 1 /* PMEM_SYS_FILE_CREATE */, 0600, &mapped);
	if (!p || mapped != len) {
		fprintf(stderr, "pmem_sys_map_file(%s): %s\n", path, errormsg());
		exit(2);
	}
	int other = open(path, O_RDWR);
	unlink(path);
	if (other < 0) {
		perror("open (second descriptor)");
		exit(2);
	}
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(i);
	if (ftruncate(other, (off_t)(VICTIM_KEPT * page_size())) != 0) {
		perror("ftruncate (second descriptor)");
		exit(2);
	}
	close(other);
	return p;
}

static inline size_t victim_end(void)
{
	return VICTIM_KEPT * page_size();
}

/* The same truncated file, mapped with plain mmap: memory the library did
 * not map (NULL on failure). */
static inline unsigned char *victim_plain(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/pmem-sys-dlclose-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	size_t len = VICTIM_PAGES * page_size();
	if (fd < 0 || ftruncate(fd, (off_t)len) != 0)
		return NULL;
	unlink(path);
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, (off_t)victim_end()) != 0)
		return NULL;
	close(fd);
	return p;
}

static atomic_int own_seen;
static atomic_uintptr_t own_addr;
static atomic_int own_code;

static inline void own_handler(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)ctx;
	atomic_fetch_add(&own_seen, 1);
	atomic_store(&own_addr, (uintptr_t)info->si_addr);
	atomic_store(&own_code, info->si_code);
	if (info->si_code > 0) {
		uintptr_t pg = (uintptr_t)info->si_addr & ~(uintptr_t)(page_size() - 1);
		mmap((void *)pg, page_size(), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	}
}

static inline void install_own_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) != 0) {
		perror("sigaction");
		exit(2);
	}
}

/* The handler currently installed for SIGBUS (as a plain address). */
static inline uintptr_t current_sigbus_handler(void)
{
	struct sigaction sa;
	sigaction(SIGBUS, NULL, &sa);
	return (sa.sa_flags & SA_SIGINFO) ? (uintptr_t)sa.sa_sigaction : (uintptr_t)sa.sa_handler;
}

#endif
