/*
 * tests/libpmem/diff.c - the differential table of `make test-libpmem`.
 *
 * Built once against Debian's <libpmem.h> and -lpmem, run twice by run.sh:
 * once on PMDK's libpmem.so.1 and once on the replacement (LD_LIBRARY_PATH),
 * each in its own process.  Every case prints one line with what the call
 * returned, errno, *mapped_lenp, *is_pmemp, and what is on disk afterwards
 * (size, mode, a hash of the contents, entries left in the case's
 * directory).  run.sh diffs the two outputs; the differences it accepts are
 * listed there with their reason.
 *
 * Nothing here may print an address or anything else that differs between
 * two runs of the same library: only values a program can rely on.
 *
 * Usage: diff WORKDIR   (an empty directory; the cases create files in it)
 */
#define _GNU_SOURCE
#include <libpmem.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u
#define LEN_UNSET ((size_t)0xdeadbeef)
#define PMEM_UNSET (-7)

static char base[1024];
static char cdir[1100];
static int ncase;

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

static const char *ename(int e)
{
	if (e == 0)
		return "0";
	const char *s = strerrorname_np(e);
	return s ? s : "?";
}

static void die(const char *what)
{
	fprintf(stderr, "diff: setup failed: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* A fresh directory for the next case; returns its path. */
static const char *case_dir(void)
{
	snprintf(cdir, sizeof(cdir), "%s/c%03d", base, ++ncase);
	if (mkdir(cdir, 0755) != 0)
		die(cdir);
	return cdir;
}

/* cdir/rel in one of four rotating buffers. */
static const char *P(const char *rel)
{
	static char buf[4][1500];
	static int i;
	char *b = buf[i++ & 3];
	snprintf(b, sizeof(buf[0]), "%s/%s", cdir, rel);
	return b;
}

/* A file of SIZE bytes with a pattern, mode MODE. */
static void mkfile(const char *path, size_t size, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		die(path);
	unsigned char blk[PAGE];
	for (size_t off = 0; off < size;) {
		size_t n = size - off < PAGE ? size - off : PAGE;
		for (size_t i = 0; i < n; i++)
			blk[i] = (unsigned char)((off + i) * 7 + 3);
		if (write(fd, blk, n) != (ssize_t)n)
			die(path);
		off += n;
	}
	close(fd);
	if (chmod(path, mode) != 0)
		die(path);
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* " size=... mode=... hash=..." of PATH, or " absent"/" dir". */
static void describe(const char *path, char *out, size_t outlen)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		snprintf(out, outlen, " file=absent(%s)", ename(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(out, outlen, " file=type%o mode=%o", (unsigned)(st.st_mode & S_IFMT),
			 (unsigned)(st.st_mode & 07777));
		return;
	}
	uint64_t h = 1469598103934665603ull;
	/* Huge sparse files (a refused 2^62-byte map may leave one): no hash. */
	int fd = st.st_size <= (64 << 20) ? open(path, O_RDONLY) : -1;
	if (fd >= 0) {
		unsigned char b[65536];
		ssize_t r;
		while ((r = read(fd, b, sizeof(b))) > 0)
			for (ssize_t i = 0; i < r; i++) {
				h ^= b[i];
				h *= 1099511628211ull;
			}
		close(fd);
	}
	snprintf(out, outlen, " size=%lld blocks=%s mode=%o hash=%016llx", (long long)st.st_size,
		 st.st_blocks == 0 ? "0" : (st.st_blocks * 512 >= st.st_size ? "full" : "part"),
		 (unsigned)(st.st_mode & 07777), (unsigned long long)h);
}

/*
 * One pmem_map_file call.  On success the mapping gets two bytes written
 * (first and last, persisted) and is unmapped; INSPECT names the file whose
 * state is printed afterwards (NULL: none).
 */
static void map_case(const char *name, const char *path, size_t len, int flags, mode_t mode,
		     const char *inspect)
{
	size_t mlen = LEN_UNSET;
	int is_pmem = PMEM_UNSET;
	errno = 0;
	void *p = pmem_map_file(path, len, flags, mode, &mlen, &is_pmem);
	int err = errno;
	char tail[256] = "";
	if (p) {
		int chk = pmem_is_pmem(p, mlen);
		if (mlen > 0) {
			((volatile unsigned char *)p)[0] = (unsigned char)ncase;
			((volatile unsigned char *)p)[mlen - 1] = (unsigned char)(ncase + 1);
			pmem_persist(p, 1);
			pmem_persist((char *)p + mlen - 1, 1);
		}
		errno = 0;
		int u = pmem_unmap(p, mlen);
		snprintf(tail, sizeof(tail), " is_pmem()=%d unmap=%d/%s", chk, u, ename(u ? errno : 0));
	} else {
		const char *m = pmem_errormsg();
		snprintf(tail, sizeof(tail), " errormsg=%s", m == NULL ? "NULL" : (*m ? "set" : "empty"));
	}
	char file[256] = "";
	if (inspect)
		describe(inspect, file, sizeof(file));
	char ml[32];
	if (mlen == LEN_UNSET)
		snprintf(ml, sizeof(ml), "unset");
	else
		snprintf(ml, sizeof(ml), "%zu", mlen);
	printf("%-34s ret=%s errno=%s mapped_len=%s is_pmem=%d%s%s entries=%d\n", name,
	       p ? "map" : "NULL", ename(err), ml, is_pmem, tail, file, entries(cdir));
}

/* The same, in a child process running as nobody (root ignores modes). */
static void map_case_nobody(const char *name, const char *path, size_t len, int flags,
			    mode_t mode, const char *inspect)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (geteuid() == 0) {
			if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
				die("setuid(nobody)");
		}
		map_case(name, path, len, flags, mode, inspect);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("%-34s child died (status %d)\n", name, st);
}

static void map_cases(void)
{
	const char *d;
	const int C = PMEM_FILE_CREATE, X = PMEM_FILE_EXCL, S = PMEM_FILE_SPARSE,
		  T = PMEM_FILE_TMPFILE;

	/* missing files */
	case_dir();
	map_case("missing/0/0", P("f"), 0, 0, 0644, P("f"));
	case_dir();
	map_case("missing/4096/0", P("f"), 4096, 0, 0644, P("f"));
	case_dir();
	map_case("missing/4096/C", P("f"), 4096, C, 0644, P("f"));
	case_dir();
	map_case("missing/0/C", P("f"), 0, C, 0644, P("f"));
	case_dir();
	map_case("missing/8192/CX", P("f"), 8192, C | X, 0644, P("f"));
	case_dir();
	map_case("missing/0/CX", P("f"), 0, C | X, 0644, P("f"));
	case_dir();
	map_case("missing/1M/CS", P("f"), 1 << 20, C | S, 0644, P("f"));
	case_dir();
	map_case("missing/1M/CSX", P("f"), 1 << 20, C | S | X, 0644, P("f"));
	case_dir();
	map_case("missing/100/C", P("f"), 100, C, 0644, P("f"));
	case_dir();
	map_case("missing/5000/C", P("f"), 5000, C, 0644, P("f"));
	case_dir();
	map_case("missing/4096/C/mode0", P("f"), 4096, C, 0, P("f"));
	case_dir();
	map_case("missing/4096/C/mode0600", P("f"), 4096, C, 0600, P("f"));
	case_dir();
	map_case("missing/4096/C/mode04777", P("f"), 4096, C, 04777, P("f"));
	case_dir();
	map_case("missing/4096/X-only", P("f"), 4096, X, 0644, P("f"));
	case_dir();
	map_case("missing/0/X-only", P("f"), 0, X, 0644, P("f"));
	case_dir();
	map_case("missing/0/S-only", P("f"), 0, S, 0644, P("f"));
	case_dir();
	map_case("missing/dir-missing/C", P("nodir/f"), 4096, C, 0644, P("nodir"));
	case_dir();
	map_case("emptypath/0/0", "", 0, 0, 0644, NULL);
	case_dir();
	map_case("emptypath/4096/C", "", 4096, C, 0644, NULL);
	case_dir();
	{
		char longname[400];
		memset(longname, 'n', 300);
		longname[300] = 0;
		map_case("missing/name-too-long/C", P(longname), 4096, C, 0644, NULL);
	}
	/* huge lengths: refused, nothing left behind */
	case_dir();
	map_case("missing/2^62/CS", P("f"), (size_t)1 << 62, C | S, 0644, P("f"));
	case_dir();
	map_case("missing/2^62/C", P("f"), (size_t)1 << 62, C, 0644, P("f"));
	case_dir();
	map_case("missing/SIZE_MAX/C", P("f"), SIZE_MAX, C, 0644, P("f"));
	case_dir();
	map_case("missing/2^63/CS", P("f"), (size_t)1 << 63, C | S, 0644, P("f"));

	/* existing files */
	static const struct {
		const char *name;
		size_t size, len;
		int flags;
	} ex[] = {
		{"existing8192/0/0", 8192, 0, 0},
		{"existing8192/4096/0", 8192, 4096, 0},
		{"existing8192/8192/0", 8192, 8192, 0},
		{"existing8192/4096/C-shrink", 8192, 4096, PMEM_FILE_CREATE},
		{"existing8192/100/C-shrink", 8192, 100, PMEM_FILE_CREATE},
		{"existing8192/16384/C-grow", 8192, 16384, PMEM_FILE_CREATE},
		{"existing8192/8192/C-same", 8192, 8192, PMEM_FILE_CREATE},
		{"existing8192/0/C", 8192, 0, PMEM_FILE_CREATE},
		{"existing8192/4096/CX", 8192, 4096, PMEM_FILE_CREATE | PMEM_FILE_EXCL},
		{"existing8192/0/CX", 8192, 0, PMEM_FILE_CREATE | PMEM_FILE_EXCL},
		{"existing8192/1M/CS-grow", 8192, 1 << 20, PMEM_FILE_CREATE | PMEM_FILE_SPARSE},
		{"existing8192/4096/CS-shrink", 8192, 4096, PMEM_FILE_CREATE | PMEM_FILE_SPARSE},
		{"existing8192/0/S", 8192, 0, PMEM_FILE_SPARSE},
		{"existing8192/0/X", 8192, 0, PMEM_FILE_EXCL},
		{"existing5000/0/0", 5000, 0, 0},
		{"existing1/0/0", 1, 0, 0},
		{"existing0/0/0", 0, 0, 0},
		{"existing0/4096/C", 0, 4096, PMEM_FILE_CREATE},
		{"existing8192/0/flag16", 8192, 0, 16},
		{"existing8192/4096/C|flag16", 8192, 4096, PMEM_FILE_CREATE | 16},
		{"existing8192/0/flag-1", 8192, 0, -1},
		{"existing8192/0/flag0x100", 8192, 0, 0x100},
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		case_dir();
		mkfile(P("f"), ex[i].size, 0644);
		map_case(ex[i].name, P("f"), ex[i].len, ex[i].flags, 0600, P("f"));
	}

	/* directories and TMPFILE */
	d = case_dir();
	map_case("dir/0/0", d, 0, 0, 0644, NULL);
	d = case_dir();
	map_case("dir/4096/C", d, 4096, C, 0644, NULL);
	d = case_dir();
	map_case("dir/4096/CT", d, 4096, C | T, 0644, NULL);
	d = case_dir();
	map_case("dir/4096/CTX", d, 4096, C | T | X, 0644, NULL);
	d = case_dir();
	map_case("dir/1M/CTS", d, 1 << 20, C | T | S, 0644, NULL);
	d = case_dir();
	map_case("dir/100/CT", d, 100, C | T, 0644, NULL);
	d = case_dir();
	map_case("dir/4096/T-no-create", d, 4096, T, 0644, NULL);
	d = case_dir();
	map_case("dir/0/T-no-create", d, 0, T, 0644, NULL);
	d = case_dir();
	map_case("dir/0/CT", d, 0, C | T, 0644, NULL);
	d = case_dir();
	map_case("dir/2^62/CT", d, (size_t)1 << 62, C | T, 0644, NULL);
	case_dir();
	mkfile(P("f"), 8192, 0644);
	map_case("file/4096/CT", P("f"), 4096, C | T, 0644, P("f"));
	case_dir();
	map_case("missing-dir/4096/CT", P("nodir"), 4096, C | T, 0644, P("nodir"));

	/* links, fifos */
	case_dir();
	mkfile(P("target"), 8192, 0644);
	if (symlink(P("target"), P("link")) != 0)
		die("symlink");
	map_case("symlink/0/0", P("link"), 0, 0, 0644, P("target"));
	case_dir();
	if (symlink(P("target"), P("link")) != 0)
		die("symlink");
	map_case("dangling-symlink/4096/C", P("link"), 4096, C, 0644, P("target"));
	case_dir();
	if (symlink(P("target"), P("link")) != 0)
		die("symlink");
	map_case("dangling-symlink/4096/CX", P("link"), 4096, C | X, 0644, P("target"));
	case_dir();
	if (mkfifo(P("fifo"), 0644) != 0)
		die("mkfifo");
	map_case("fifo/0/0", P("fifo"), 0, 0, 0644, P("fifo"));
	case_dir();
	if (mkfifo(P("fifo"), 0644) != 0)
		die("mkfifo");
	map_case("fifo/4096/C", P("fifo"), 4096, C, 0644, P("fifo"));

	/* device paths */
	case_dir();
	map_case("/dev/null/0/0", "/dev/null", 0, 0, 0644, NULL);
	case_dir();
	map_case("/dev/null/4096/C", "/dev/null", 4096, C, 0644, NULL);
	case_dir();
	map_case("/dev/zero/0/0", "/dev/zero", 0, 0, 0644, NULL);
	case_dir();
	map_case("/dev/zero/4096/C", "/dev/zero", 4096, C, 0644, NULL);
	case_dir();
	map_case("/dev/zero/4096/CX", "/dev/zero", 4096, C | X, 0644, NULL);

	/* permissions, as nobody (root would bypass them) */
	d = case_dir();
	if (chmod(d, 0755) != 0)
		die("chmod");
	mkfile(P("f"), 8192, 0444);
	map_case_nobody("nobody/readonly-file/0/0", P("f"), 0, 0, 0644, P("f"));
	d = case_dir();
	if (chmod(d, 0755) != 0)
		die("chmod");
	mkfile(P("f"), 8192, 0444);
	map_case_nobody("nobody/readonly-file/4096/C", P("f"), 4096, C, 0644, P("f"));
	d = case_dir();
	if (chmod(d, 0755) != 0)
		die("chmod");
	map_case_nobody("nobody/readonly-dir/4096/C", P("f"), 4096, C, 0644, P("f"));
	d = case_dir();
	if (chmod(d, 0755) != 0)
		die("chmod");
	map_case_nobody("nobody/readonly-dir/4096/CT", d, 4096, C | T, 0644, NULL);
	d = case_dir();
	if (chmod(d, 0777) != 0)
		die("chmod");
	map_case_nobody("nobody/writable-dir/4096/C", P("f"), 4096, C, 0644, P("f"));
	d = case_dir();
	if (chmod(d, 0755) != 0)
		die("chmod");
	mkfile(P("f"), 8192, 0000);
	map_case_nobody("nobody/mode0-file/0/0", P("f"), 0, 0, 0644, P("f"));

	/* NULL out-parameters */
	case_dir();
	mkfile(P("f"), 8192, 0644);
	errno = 0;
	void *p = pmem_map_file(P("f"), 0, 0, 0, NULL, NULL);
	int err = errno;
	printf("%-34s ret=%s errno=%s unmap=%d\n", "existing8192/0/0/NULL-outs", p ? "map" : "NULL",
	       ename(err), p ? pmem_unmap(p, 8192) : -9);
}

/* A mapped scratch file for the store and flush calls. */
static unsigned char *scratch(size_t len)
{
	case_dir();
	size_t mlen = 0;
	int is_pmem = 0;
	void *p = pmem_map_file(P("scratch"), len, PMEM_FILE_CREATE, 0644, &mlen, &is_pmem);
	if (!p || mlen != len)
		die("scratch map");
	return p;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 13 + seed);
}

static void store_cases(void)
{
	const size_t N = 64 * 1024;
	unsigned char *b = scratch(N);
	static const unsigned flagsets[] = {
		0,
		PMEM_F_MEM_NODRAIN,
		PMEM_F_MEM_NONTEMPORAL,
		PMEM_F_MEM_TEMPORAL,
		PMEM_F_MEM_WC,
		PMEM_F_MEM_WB,
		PMEM_F_MEM_NOFLUSH,
		PMEM_F_MEM_NONTEMPORAL | PMEM_F_MEM_NODRAIN,
		PMEM_F_MEM_TEMPORAL | PMEM_F_MEM_NODRAIN,
		PMEM_F_MEM_NONTEMPORAL | PMEM_F_MEM_TEMPORAL,
		PMEM_F_MEM_WC | PMEM_F_MEM_WB,
		PMEM_F_MEM_NOFLUSH | PMEM_F_MEM_NONTEMPORAL,
		PMEM_F_MEM_VALID_FLAGS,
		64,
		0x80000000u,
		~0u,
	};
	static const size_t lens[] = {0, 1, 8, 63, 257, 4096, 20000};
	int k = 0;
	for (size_t f = 0; f < sizeof(flagsets) / sizeof(flagsets[0]); f++) {
		/* one length per flag set, cycling, plus 4096 always */
		size_t n1 = lens[f % (sizeof(lens) / sizeof(lens[0]))];
		const size_t ns[2] = {n1, 4096};
		for (int j = 0; j < 2; j++) {
			size_t n = ns[j];
			unsigned fl = flagsets[f];
			char name[64];
			unsigned char src[20000];
			fill(src, sizeof(src), 40 + k);
			fill(b, N, k);
			void *r1 = pmem_memcpy(b + 3, src, n, fl);
			void *r2 = pmem_memset(b + 30000, 0x5a + k, n, fl);
			void *r3 = pmem_memmove(b + 1000, b + 1007, n, fl);
			snprintf(name, sizeof(name), "flags%#x/n%zu/%d", fl, n, j);
			printf("%-34s memcpy=%s memset=%s memmove=%s hash=%016llx\n", name,
			       r1 == b + 3 ? "dst" : "other", r2 == b + 30000 ? "dst" : "other",
			       r3 == b + 1000 ? "dst" : "other", (unsigned long long)fnv(b, N));
			k++;
		}
	}
	/* overlapping memmove, both directions, every variant */
	static const struct {
		size_t dst, src, n;
	} ov[] = {
		{100, 101, 1000}, {101, 100, 1000}, {0, 8, 4096},     {8, 0, 4096},
		{64, 0, 8192},    {0, 64, 8192},    {1, 0, 30000},     {0, 1, 30000},
		{5, 5, 100},      {4099, 0, 4097},  {0, 4095, 20000},  {33, 31, 7},
	};
	for (size_t i = 0; i < sizeof(ov) / sizeof(ov[0]); i++) {
		char name[64];
		fill(b, N, (unsigned)i);
		void *r = pmem_memmove_persist(b + ov[i].dst, b + ov[i].src, ov[i].n);
		snprintf(name, sizeof(name), "memmove_persist/%zu<-%zu/%zu", ov[i].dst, ov[i].src,
			 ov[i].n);
		printf("%-34s ret=%s hash=%016llx\n", name, r == b + ov[i].dst ? "dst" : "other",
		       (unsigned long long)fnv(b, N));
		fill(b, N, (unsigned)i + 1);
		r = pmem_memmove_nodrain(b + ov[i].dst, b + ov[i].src, ov[i].n);
		pmem_drain();
		snprintf(name, sizeof(name), "memmove_nodrain/%zu<-%zu/%zu", ov[i].dst, ov[i].src,
			 ov[i].n);
		printf("%-34s ret=%s hash=%016llx\n", name, r == b + ov[i].dst ? "dst" : "other",
		       (unsigned long long)fnv(b, N));
	}
	/* the other named forms */
	{
		unsigned char src[5000];
		fill(src, sizeof(src), 99);
		fill(b, N, 7);
		void *r1 = pmem_memcpy_persist(b + 17, src, 5000);
		void *r2 = pmem_memset_persist(b + 9000, 0xa5, 3001);
		printf("%-34s memcpy=%s memset=%s hash=%016llx\n", "persist-forms",
		       r1 == b + 17 ? "dst" : "other", r2 == b + 9000 ? "dst" : "other",
		       (unsigned long long)fnv(b, N));
		fill(b, N, 8);
		r1 = pmem_memcpy_nodrain(b + 17, src, 5000);
		r2 = pmem_memset_nodrain(b + 9000, 0xa5, 3001);
		pmem_drain();
		printf("%-34s memcpy=%s memset=%s hash=%016llx\n", "nodrain-forms",
		       r1 == b + 17 ? "dst" : "other", r2 == b + 9000 ? "dst" : "other",
		       (unsigned long long)fnv(b, N));
	}
	/* flushes: they return nothing, or an int */
	pmem_flush(b, 100);
	pmem_flush(b + 1, 0);
	pmem_persist(b + 63, 2);
	pmem_deep_flush(b, 4096);
	pmem_drain();
	errno = 0;
	int dp = pmem_deep_persist(b, 4096);
	int dpe = errno;
	errno = 0;
	int dd = pmem_deep_drain(b, 4096);
	int dde = errno;
	errno = 0;
	int dp0 = pmem_deep_persist(b, 0);
	int dp0e = errno;
	printf("%-34s deep_persist=%d/%s deep_drain=%d/%s deep_persist(len0)=%d/%s\n",
	       "deep-calls/mapped", dp, ename(dpe), dd, ename(dde), dp0, ename(dp0e));
	unsigned char *heap = malloc(8192);
	if (!heap)
		die("malloc");
	memset(heap, 1, 8192);
	errno = 0;
	dp = pmem_deep_persist(heap, 100);
	dpe = errno;
	errno = 0;
	dd = pmem_deep_drain(heap, 100);
	dde = errno;
	printf("%-34s deep_persist=%d/%s deep_drain=%d/%s\n", "deep-calls/heap", dp, ename(dpe), dd,
	       ename(dde));
	free(heap);
	pmem_unmap(b, N);
}

static void range_cases(void)
{
	const size_t N = 4 * PAGE;
	unsigned char *b = scratch(N);
	int heapv = 0;
	unsigned char *heap = malloc(100);
	if (!heap)
		die("malloc");
	printf("%-34s %d %d %d %d %d %d %d\n", "is_pmem/map,0,+1,end,cross,heap,stack",
	       pmem_is_pmem(b, N), pmem_is_pmem(b, 0), pmem_is_pmem(b + 1, 1),
	       pmem_is_pmem(b + N - 1, 1), pmem_is_pmem(b + N - 1, 2), pmem_is_pmem(heap, 100),
	       pmem_is_pmem(&heapv, sizeof(heapv)));
	printf("%-34s %d\n", "is_pmem/NULL,0", pmem_is_pmem(NULL, 0));
	free(heap);

	static const struct {
		const char *name;
		size_t off, len;
	} ms[] = {
		{"msync/page", 0, PAGE},	 {"msync/unaligned", 100, 10},
		{"msync/len0", 0, 0},		 {"msync/unaligned-len0", 100, 0},
		{"msync/whole", 0, 4 * PAGE},	 {"msync/last-byte", 4 * PAGE - 1, 1},
		{"msync/cross-pages", PAGE - 1, 2},
	};
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		errno = 0;
		int r = pmem_msync(b + ms[i].off, ms[i].len);
		printf("%-34s ret=%d errno=%s\n", ms[i].name, r, ename(r ? errno : 0));
	}

	/* partial unmaps */
	errno = 0;
	int r = pmem_unmap(b + 1, PAGE);
	printf("%-34s ret=%d errno=%s\n", "unmap/unaligned", r, ename(r ? errno : 0));
	errno = 0;
	r = pmem_unmap(b, 0);
	printf("%-34s ret=%d errno=%s\n", "unmap/len0", r, ename(r ? errno : 0));
	errno = 0;
	r = pmem_unmap(b + PAGE, PAGE);
	int gone = msync(b + PAGE, PAGE, MS_ASYNC) != 0 && errno == ENOMEM;
	int kept = msync(b, PAGE, MS_ASYNC) == 0 && msync(b + 2 * PAGE, 2 * PAGE, MS_ASYNC) == 0;
	printf("%-34s ret=%d hole=%d rest-mapped=%d\n", "unmap/middle-page", r, gone, kept);
	errno = 0;
	r = pmem_msync(b + PAGE, PAGE);
	printf("%-34s ret=%d errno=%s\n", "msync/unmapped-hole", r, ename(r ? errno : 0));
	printf("%-34s %d %d %d\n", "is_pmem/after-partial:head,hole,tail", pmem_is_pmem(b, PAGE),
	       pmem_is_pmem(b + PAGE, PAGE), pmem_is_pmem(b + 2 * PAGE, 2 * PAGE));
	errno = 0;
	r = pmem_unmap(b + 3 * PAGE, 100);
	gone = msync(b + 3 * PAGE, PAGE, MS_ASYNC) != 0 && errno == ENOMEM;
	printf("%-34s ret=%d gone=%d\n", "unmap/last-page-len100", r, gone);
	errno = 0;
	r = pmem_unmap(b, 4 * PAGE);
	printf("%-34s ret=%d errno=%s\n", "unmap/rest-over-holes", r, ename(r ? errno : 0));
	errno = 0;
	r = pmem_unmap(b, 4 * PAGE);
	printf("%-34s ret=%d errno=%s\n", "unmap/again", r, ename(r ? errno : 0));
}

static void version_cases(void)
{
	static const unsigned v[][2] = {{1, 0}, {1, 1}, {1, 2}, {0, 0}, {0, 5}, {2, 0}, {1, 99}, {UINT_MAX, 0}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "check_version/%u.%u", v[i][0], v[i][1]);
		const char *m = pmem_check_version(v[i][0], v[i][1]);
		printf("%-34s %s\n", name, m ? m : "NULL");
	}
	printf("%-34s %d\n", "has_hw_drain", pmem_has_hw_drain());
	printf("%-34s %d\n", "has_auto_flush", pmem_has_auto_flush());
}

/* pmem_errormsg is per thread: a new thread starts without a message and
 * its failure leaves the main thread's message alone. */
static void *errormsg_thread(void *arg)
{
	char *out = arg;
	const char *m = pmem_errormsg();
	const char *start = m == NULL ? "NULL" : (*m ? "nonempty" : "empty");
	void *p = pmem_map_file("/nonexistent-dir/f", 4096, PMEM_FILE_CREATE, 0644, NULL, NULL);
	m = pmem_errormsg();
	snprintf(out, 128, "thread-start=%s thread-fail=%s thread-msg=%s", start, p ? "map" : "NULL",
		 m == NULL ? "NULL" : (*m ? "set" : "empty"));
	return NULL;
}

static void errormsg_cases(void)
{
	char before[512], out[128] = "";
	case_dir();
	if (pmem_map_file(P("missing"), 0, 0, 0, NULL, NULL) != NULL)
		die("errormsg setup");
	snprintf(before, sizeof(before), "%s", pmem_errormsg());
	pthread_t t;
	if (pthread_create(&t, NULL, errormsg_thread, out) != 0 || pthread_join(t, NULL) != 0)
		die("pthread");
	printf("%-34s %s main-unchanged=%d\n", "errormsg/threads", out,
	       strcmp(before, pmem_errormsg()) == 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: diff WORKDIR\n");
		return 2;
	}
	char real[PATH_MAX];
	if (!realpath(argv[1], real) || strlen(real) >= sizeof(base))
		die(argv[1]);
	strcpy(base, real);
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *m = pmem_errormsg();
	printf("%-34s %s\n", "errormsg/at-start", m == NULL ? "NULL" : (*m ? "nonempty" : "empty"));
	version_cases();
	map_cases();
	m = pmem_errormsg();
	printf("%-34s %s\n", "errormsg/after", m == NULL ? "NULL" : "non-NULL");
	errormsg_cases();
	store_cases();
	range_cases();
	return 0;
}
