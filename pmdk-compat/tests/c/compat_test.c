/*
 * libpmem.so.1 (pmdk-compat) from C: every one of PMDK 1.12's 23 functions
 * and every PMEM_F_MEM_* flag, checked against PMDK's documented contract.
 *
 *   compat_test EXPECTED_LIBRARY_PATH
 *
 * The program proves first that the library it runs on is the replacement
 * (dladdr of pmem_map_file), then runs each check; PMEM_IS_PMEM_FORCE and
 * PMEM_SYS_SYSFS_ROOT are read once per process, so those checks re-run
 * this program as a child with the variable set. Exit status 0 only when
 * every check passed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<libpmem.h>)
#include <libpmem.h>
#else
/* PMDK 1.12's declarations, for machines without libpmem-dev. */
#define PMEM_FILE_CREATE (1 << 0)
#define PMEM_FILE_EXCL (1 << 1)
#define PMEM_FILE_SPARSE (1 << 2)
#define PMEM_FILE_TMPFILE (1 << 3)
#define PMEM_F_MEM_NODRAIN (1U << 0)
#define PMEM_F_MEM_NONTEMPORAL (1U << 1)
#define PMEM_F_MEM_TEMPORAL (1U << 2)
#define PMEM_F_MEM_WC (1U << 3)
#define PMEM_F_MEM_WB (1U << 4)
#define PMEM_F_MEM_NOFLUSH (1U << 5)
#define PMEM_MAJOR_VERSION 1
#define PMEM_MINOR_VERSION 1
void *pmem_map_file(const char *, size_t, int, mode_t, size_t *, int *);
int pmem_unmap(void *, size_t);
int pmem_is_pmem(const void *, size_t);
void pmem_persist(const void *, size_t);
int pmem_msync(const void *, size_t);
int pmem_has_auto_flush(void);
void pmem_flush(const void *, size_t);
void pmem_deep_flush(const void *, size_t);
int pmem_deep_drain(const void *, size_t);
int pmem_deep_persist(const void *, size_t);
void pmem_drain(void);
int pmem_has_hw_drain(void);
void *pmem_memmove_persist(void *, const void *, size_t);
void *pmem_memcpy_persist(void *, const void *, size_t);
void *pmem_memset_persist(void *, int, size_t);
void *pmem_memmove_nodrain(void *, const void *, size_t);
void *pmem_memcpy_nodrain(void *, const void *, size_t);
void *pmem_memset_nodrain(void *, int, size_t);
void *pmem_memmove(void *, const void *, size_t, unsigned);
void *pmem_memcpy(void *, const void *, size_t, unsigned);
void *pmem_memset(void *, int, size_t, unsigned);
const char *pmem_check_version(unsigned, unsigned);
const char *pmem_errormsg(void);
#endif

static int failures, checks;
static char dir[PATH_MAX];
static const char *self;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, " (errno %d, pmem_errormsg \"%s\")\n", errno,     \
                    pmem_errormsg());                                          \
        }                                                                      \
    } while (0)

/* A path in the test directory (never freed: a test program). */
static char *path_of(const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return strdup(p);
}

static off_t size_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static int count_entries(const char *d)
{
    DIR *dd = opendir(d);
    int n = 0;
    if (!dd)
        return -1;
    for (struct dirent *e; (e = readdir(dd));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(dd);
    return n;
}

static void write_file(const char *p, size_t n, int c)
{
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char buf[4096];
    memset(buf, c, sizeof buf);
    for (size_t done = 0; fd >= 0 && done < n;) {
        size_t k = n - done < sizeof buf ? n - done : sizeof buf;
        if (write(fd, buf, k) != (ssize_t)k)
            break;
        done += k;
    }
    if (fd >= 0)
        close(fd);
}

/* A refused map: NULL, the errno, a message naming the call. */
static void refused(const char *what, const char *p, size_t len, int flags, int want)
{
    size_t mlen = 12345;
    int isp = 7;
    errno = 0;
    void *m = pmem_map_file(p, len, flags, 0600, &mlen, &isp);
    int e = errno;
    CHECK(m == NULL && e == want, "%s: got %p errno %d, want NULL errno %d", what, m, e, want);
    CHECK(strstr(pmem_errormsg(), "pmem_map_file") != NULL, "%s: message names the call", what);
    CHECK(mlen == 12345 && isp == 7, "%s: out-parameters untouched on refusal", what);
    if (m)
        pmem_unmap(m, mlen);
}

static void test_version_and_errormsg(void)
{
    CHECK(pmem_check_version(PMEM_MAJOR_VERSION, PMEM_MINOR_VERSION) == NULL, "1.1 accepted");
    CHECK(pmem_check_version(1, 0) == NULL, "1.0 accepted");
    const unsigned bad[][2] = {{2, 0}, {0, 0}, {1, 2}, {UINT_MAX, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *m = pmem_check_version(bad[i][0], bad[i][1]);
        CHECK(m != NULL && strstr(m, "version mismatch") != NULL, "%u.%u refused with a message",
              bad[i][0], bad[i][1]);
        CHECK(m == pmem_errormsg(), "the message is pmem_errormsg()'s buffer");
    }
    CHECK(strstr(pmem_check_version(1, 2), "minor") != NULL, "minor named");
    CHECK(strstr(pmem_check_version(2, 0), "major") != NULL, "major named");
}

static void *thread_msg(void *arg)
{
    const char *before = pmem_errormsg();
    int ok = before != NULL && before[0] == '\0';
    pmem_check_version(3, 0);
    ok = ok && pmem_errormsg() == before && strstr(before, "need 3") != NULL;
    *(int *)arg = ok;
    return NULL;
}

static void test_errormsg_per_thread(void)
{
    pmem_check_version(2, 0);
    const char *mine = pmem_errormsg();
    int ok = 0;
    pthread_t t;
    pthread_create(&t, NULL, thread_msg, &ok);
    pthread_join(t, NULL);
    CHECK(ok, "a new thread starts with \"\", keeps one buffer, sees only its own message");
    CHECK(pmem_errormsg() == mine && strstr(mine, "need 2") != NULL, "this thread's message kept");
}

static void test_map_refusals(void)
{
    char *p = path_of("refused");
    unlink(p);
    refused("CREATE with len 0", p, 0, PMEM_FILE_CREATE, EINVAL);
    CHECK(access(p, F_OK) != 0, "nothing created");
    refused("len without CREATE (missing file)", p, 4096, 0, EINVAL);
    write_file(p, 8192, 'x');
    refused("len without CREATE (existing)", p, 4096, 0, EINVAL);
    refused("TMPFILE without CREATE", dir, 4096, PMEM_FILE_TMPFILE, EINVAL);
    refused("unknown flag", p, 0, 0x10, EINVAL);
    refused("missing file", path_of("missing"), 0, 0, ENOENT);
    refused("missing directory", path_of("no/such/file"), 4096, PMEM_FILE_CREATE, ENOENT);
    refused("EXCL on an existing file", p, 4096, PMEM_FILE_CREATE | PMEM_FILE_EXCL, EEXIST);
    CHECK(size_of(p) == 8192, "the existing file is unchanged");
    refused("a directory", dir, 0, 0, EISDIR);
    refused("a directory with CREATE", dir, 4096, PMEM_FILE_CREATE, EISDIR);
    refused("TMPFILE in a regular file", p, 4096, PMEM_FILE_CREATE | PMEM_FILE_TMPFILE, ENOTDIR);
    refused("/dev/null (a character device, not device-DAX)", "/dev/null", 0, 0, EINVAL);
    refused("NULL path", NULL, 0, 0, EINVAL);
    char *empty = path_of("empty");
    write_file(empty, 0, 0);
    refused("an empty file", empty, 0, 0, EINVAL);
    unlink(empty);

    /* A refusal after the file was created leaves no file: 2^62 bytes
     * cannot be allocated (posix_fallocate), nor mapped (SPARSE). */
    char *big = path_of("big");
    unlink(big);
    size_t huge = (size_t)1 << 62;
    errno = 0;
    void *m = pmem_map_file(big, huge, PMEM_FILE_CREATE, 0600, NULL, NULL);
    CHECK(m == NULL && errno != 0, "2^62 bytes allocated? %p", m);
    CHECK(access(big, F_OK) != 0, "the file this call created is removed");
    m = pmem_map_file(big, huge, PMEM_FILE_CREATE | PMEM_FILE_SPARSE, 0600, NULL, NULL);
    /* ENOMEM from mmap on tmpfs; EFBIG from ftruncate where files are smaller (ext4). */
    CHECK(m == NULL && (errno == ENOMEM || errno == EFBIG), "2^62 bytes mapped? %p", m);
    CHECK(access(big, F_OK) != 0, "the sparse file this call created is removed");
    /* An existing file keeps its size after a refused CREATE. */
    write_file(big, 4096, 'b');
    m = pmem_map_file(big, huge, PMEM_FILE_CREATE | PMEM_FILE_SPARSE, 0600, NULL, NULL);
    CHECK(m == NULL && size_of(big) == 4096, "existing file back to 4096, is %lld",
          (long long)size_of(big));
    unlink(big);
    unlink(p);
}

static void test_map_create_truncate_whole(void)
{
    char *p = path_of("create");
    unlink(p);
    size_t mlen = 0;
    int isp = -1;
    errno = 0;
    char *m = pmem_map_file(p, 1 << 20, PMEM_FILE_CREATE, 0640, &mlen, &isp);
    int e = errno;
    CHECK(m != NULL && mlen == 1 << 20 && isp == 0, "create 1 MiB: %p %zu %d", (void *)m, mlen, isp);
    if (!m)
        return;
    /* tmpfs refuses MAP_SYNC with EOPNOTSUPP, which PMDK leaves in errno. */
    CHECK(e == EOPNOTSUPP, "errno after a map that fell back from MAP_SYNC: %d", e);
    struct stat st;
    stat(p, &st);
    CHECK(st.st_size == 1 << 20 && (st.st_mode & 0777) == 0640, "size and mode");
    CHECK((long long)st.st_blocks * 512 >= 1 << 20, "allocated without SPARSE");
    pmem_memset_persist(m, 'a', mlen);
    CHECK(pmem_unmap(m, mlen) == 0, "unmap");

    /* CREATE on an existing file truncates (or extends) it to len. */
    m = pmem_map_file(p, 8192, PMEM_FILE_CREATE, 0600, &mlen, NULL);
    CHECK(m && mlen == 8192 && size_of(p) == 8192, "truncated to 8192: %lld", (long long)size_of(p));
    CHECK(m && m[0] == 'a' && m[8191] == 'a', "data before len kept");
    if (m)
        pmem_unmap(m, mlen);
    m = pmem_map_file(p, 3 << 20, PMEM_FILE_CREATE | PMEM_FILE_SPARSE, 0600, &mlen, NULL);
    CHECK(m && mlen == 3 << 20 && size_of(p) == 3 << 20, "extended to 3 MiB");
    CHECK(m && m[0] == 'a' && m[8192] == 0, "old data kept, new bytes zero");
    if (m)
        pmem_unmap(m, mlen);

    /* Without CREATE and len 0: the whole file. */
    errno = EBADF;
    m = pmem_map_file(p, 0, 0, 0, &mlen, &isp);
    CHECK(m && mlen == 3 << 20 && isp == 0, "whole file");
    if (m)
        pmem_unmap(m, mlen);
    /* NULL out-pointers are allowed. */
    m = pmem_map_file(p, 0, 0, 0, NULL, NULL);
    CHECK(m != NULL, "NULL mapped_lenp and is_pmemp");
    if (m)
        pmem_unmap(m, 3 << 20);
    unlink(p);

    /* SPARSE allocates nothing. */
    char *sp = path_of("sparse");
    unlink(sp);
    m = pmem_map_file(sp, 1 << 20, PMEM_FILE_CREATE | PMEM_FILE_SPARSE | PMEM_FILE_EXCL, 0600, &mlen, NULL);
    stat(sp, &st);
    CHECK(m && st.st_blocks == 0, "sparse: %lld blocks", (long long)st.st_blocks);
    if (m)
        pmem_unmap(m, mlen);
    unlink(sp);

    /* TMPFILE: an unnamed file in the directory, gone with the mapping. */
    int before = count_entries(dir);
    m = pmem_map_file(dir, 65536, PMEM_FILE_CREATE | PMEM_FILE_TMPFILE, 0600, &mlen, &isp);
    CHECK(m && mlen == 65536 && isp == 0, "tmpfile");
    CHECK(count_entries(dir) == before, "no name in the directory");
    if (m) {
        pmem_memset_persist(m, 1, mlen);
        pmem_unmap(m, mlen);
    }
    m = pmem_map_file(dir, 4096, PMEM_FILE_CREATE | PMEM_FILE_TMPFILE | PMEM_FILE_EXCL, 0600, &mlen, NULL);
    CHECK(m != NULL, "tmpfile with EXCL");
    if (m)
        pmem_unmap(m, mlen);
}

static void test_unmap_and_is_pmem(void)
{
    char *p = path_of("unmap");
    size_t page = (size_t)sysconf(_SC_PAGESIZE), mlen;
    char *m = pmem_map_file(p, 4 * page, PMEM_FILE_CREATE, 0600, &mlen, NULL);
    CHECK(m != NULL, "map");
    if (!m)
        return;
    CHECK(pmem_is_pmem(m, mlen) == 0, "tmpfs is not pmem");
    CHECK(pmem_is_pmem(m, 0) == 0, "len 0 is 0");
    int local;
    CHECK(pmem_is_pmem(&local, sizeof local) == 0, "the stack is not pmem");
    errno = 0;
    CHECK(pmem_unmap(m + 1, page) == -1 && errno == EINVAL, "misaligned start refused");
    errno = 0;
    CHECK(pmem_unmap(m, 0) == -1 && errno == EINVAL, "len 0 refused");
    CHECK(strstr(pmem_errormsg(), "pmem_unmap") != NULL, "message names the call");
    memset(m, 'u', mlen);
    /* Part of a mapping: the second page (a partial length rounds up). */
    CHECK(pmem_unmap(m + page, page - 100) == 0, "unmap one page in the middle");
    errno = 0;
    CHECK(pmem_msync(m + page, 1) == -1 && errno == ENOMEM, "the page is gone");
    CHECK(pmem_msync(m, page) == 0 && pmem_msync(m + 2 * page, 2 * page) == 0, "the rest is mapped");
    pmem_memcpy_persist(m + 3 * page, "still here", 11);
    CHECK(memcmp(m + 3 * page, "still here", 11) == 0 && m[0] == 'u', "the rest works");
    /* Unmapping over the hole is fine, as with munmap. */
    CHECK(pmem_unmap(m, mlen) == 0, "unmap the rest, across the hole");
    errno = 0;
    CHECK(pmem_msync(m, mlen) == -1 && errno == ENOMEM, "all gone");
    unlink(p);
}

static void test_msync_and_deep(void)
{
    char *p = path_of("sync");
    size_t mlen;
    char *m = pmem_map_file(p, 1 << 16, PMEM_FILE_CREATE, 0600, &mlen, NULL);
    CHECK(m != NULL, "map");
    if (!m)
        return;
    memset(m, 's', 100);
    CHECK(pmem_msync(m + 1, 10) == 0, "msync of an unaligned range (rounded to pages)");
    CHECK(pmem_msync(m, 0) == 0, "msync of nothing at a page start");
    pmem_flush(m, 100);
    pmem_drain();
    pmem_persist(m + 3, 97);
    pmem_persist(m, 0);
    pmem_deep_flush(m, 100);
    pmem_deep_flush(m, 0);
    CHECK(pmem_deep_drain(m, 100) == 0, "deep_drain of a mapped range (msync)");
    CHECK(pmem_deep_drain(m, 0) == 0, "deep_drain of nothing");
    CHECK(pmem_deep_persist(m + 5, 1000) == 0, "deep_persist");
    CHECK(m[0] == 's' && m[99] == 's', "data intact");
    /* Memory this library did not map is msynced too; unmapped fails. */
    pmem_unmap(m, mlen);
    errno = 0;
    CHECK(pmem_deep_drain(m, 100) == -1 && errno == ENOMEM, "deep_drain of unmapped memory");
    CHECK(strstr(pmem_errormsg(), "pmem_deep_drain") != NULL, "message names the call");
    errno = 0;
    CHECK(pmem_msync(m, 100) == -1 && errno == ENOMEM, "msync of unmapped memory");
    CHECK(pmem_has_hw_drain() == 0, "no hardware drain");
    int af = pmem_has_auto_flush();
    CHECK(af == 0 || af == 1 || af == -1, "has_auto_flush: %d", af);
    unlink(p);
}

/* Every form and flag combination (and unknown bits) at edge sizes and
 * offsets: the bytes written are right, nothing around them is touched,
 * the return value is the destination. */
static void test_stores(void)
{
    char *p = path_of("stores");
    size_t mlen;
    unsigned char *m = pmem_map_file(p, 1 << 20, PMEM_FILE_CREATE, 0600, &mlen, NULL);
    CHECK(m != NULL, "map");
    if (!m)
        return;
    static unsigned char src[70000], ref[1 << 18];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 7 + 3);
    const size_t sizes[] = {0, 1, 7, 8, 9, 63, 64, 65, 127, 255, 256, 257, 4095, 4096, 65536};
    const size_t offs[] = {0, 1, 8, 63};
    unsigned flagsets[64 + 3];
    for (unsigned f = 0; f < 64; f++)
        flagsets[f] = f;
    flagsets[64] = 1u << 6;           /* unknown bits are accepted */
    flagsets[65] = 0xffffffc0u;
    flagsets[66] = 0xffffffffu;
    int bad = 0;
    for (size_t fi = 0; fi < sizeof flagsets / sizeof flagsets[0]; fi++) {
        unsigned fl = flagsets[fi];
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            for (size_t oi = 0; oi < sizeof offs / sizeof offs[0]; oi++) {
                size_t n = sizes[si], off = offs[oi] + 128;
                for (int form = 0; form < 3; form++) {
                    memset(m, 0xee, n + 512);
                    memset(ref, 0xee, n + 512);
                    void *r;
                    if (form == 0) {
                        r = pmem_memcpy(m + off, src, n, fl);
                        memcpy(ref + off, src, n);
                    } else if (form == 1) {
                        r = pmem_memmove(m + off, src + 5, n, fl);
                        memmove(ref + off, src + 5, n);
                    } else {
                        r = pmem_memset(m + off, (int)(fl + n), n, fl);
                        memset(ref + off, (int)(fl + n), n);
                    }
                    if (r != m + off || memcmp(m, ref, n + 512) != 0) {
                        if (bad++ < 5)
                            fprintf(stderr, "store form %d flags %#x n %zu off %zu wrong\n", form,
                                    fl, n, off);
                    }
                }
            }
        }
        if (!(fl & (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NOFLUSH)))
            continue;
        pmem_drain();
    }
    CHECK(bad == 0, "%d flag/size/offset cases wrong", bad);

    /* Length 0 touches nothing, whatever the pointers (as in PMDK). */
    bad = 0;
    for (unsigned f = 0; f < 64; f++) {
        bad += pmem_memcpy(NULL, NULL, 0, f) != NULL;
        bad += pmem_memmove(NULL, NULL, 0, f) != NULL;
        bad += pmem_memset(NULL, 0, 0, f) != NULL;
    }
    bad += pmem_memcpy_persist(NULL, NULL, 0) != NULL || pmem_memmove_nodrain(NULL, NULL, 0) != NULL ||
           pmem_memset_persist(NULL, 1, 0) != NULL;
    pmem_persist(NULL, 0);
    pmem_flush(NULL, 0);
    pmem_deep_flush(NULL, 0);
    CHECK(bad == 0, "zero-length stores with NULL pointers");

    /* The fixed forms. */
    bad = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        void *(*cp[4])(void *, const void *, size_t) = {pmem_memcpy_persist, pmem_memcpy_nodrain,
                                                        pmem_memmove_persist, pmem_memmove_nodrain};
        for (int k = 0; k < 4; k++) {
            memset(m, 0, n + 256);
            bad += cp[k](m + 64, src, n) != m + 64 || memcmp(m + 64, src, n) != 0 || m[63] || m[64 + n];
        }
        void *(*st[2])(void *, int, size_t) = {pmem_memset_persist, pmem_memset_nodrain};
        for (int k = 0; k < 2; k++) {
            memset(m, 0, n + 256);
            bad += st[k](m + 64, 0x5a, n) != m + 64 || m[63] || m[64 + n] ||
                   (n && (m[64] != 0x5a || m[63 + n] != 0x5a));
        }
        pmem_drain();
    }
    CHECK(bad == 0, "%d fixed-form cases wrong", bad);

    /* Overlapping moves, both directions, every form and flag. */
    bad = 0;
    const size_t shifts[] = {1, 8, 63, 64, 100, 4096};
    const size_t lens[] = {1, 7, 64, 200, 5000, 65536};
    for (size_t fl = 0; fl < 64; fl += 3) {
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            for (size_t hi = 0; hi < sizeof shifts / sizeof shifts[0]; hi++) {
                size_t n = lens[li], sh = shifts[hi], base = 8192;
                for (int dirn = 0; dirn < 2; dirn++) {
                    memcpy(m, src, n + 2 * base);
                    memcpy(ref, src, n + 2 * base);
                    unsigned char *d = m + base + (dirn ? sh : 0), *s = m + base + (dirn ? 0 : sh);
                    unsigned char *rd = ref + base + (dirn ? sh : 0), *rs = ref + base + (dirn ? 0 : sh);
                    if (fl % 2)
                        pmem_memmove_persist(d, s, n);
                    else
                        pmem_memmove(d, s, n, (unsigned)fl);
                    memmove(rd, rs, n);
                    bad += memcmp(m, ref, n + 2 * base) != 0;
                }
            }
        }
    }
    pmem_drain();
    CHECK(bad == 0, "%d overlapping moves wrong", bad);
    pmem_unmap(m, mlen);
    unlink(p);
}

/* Child modes: print one answer that the parent checks. */
static int child(const char *mode, const char *arg)
{
    if (strcmp(mode, "is_pmem") == 0) {
        size_t mlen;
        int isp = -1;
        void *m = pmem_map_file(arg, 4096, PMEM_FILE_CREATE, 0600, &mlen, &isp);
        int direct = m ? pmem_is_pmem(m, mlen) : -2;
        char local[16];
        printf("%d %d %d %d %d\n", isp, direct, pmem_is_pmem(local, sizeof local), pmem_is_pmem(local, 0),
               pmem_is_pmem(NULL, 0));
        if (m)
            pmem_unmap(m, mlen);
        unlink(arg);
        return 0;
    }
    if (strcmp(mode, "unmap") == 0) {
        /* The partial-unmap checks on mappings pmem-sys's registry holds
         * (the parent forces a granularity, so every mapping is registered). */
        snprintf(dir, sizeof dir, "%s", arg);
        test_unmap_and_is_pmem();
        printf("%d\n", failures);
        return 0;
    }
    if (strcmp(mode, "autoflush") == 0) {
        printf("%d\n", pmem_has_auto_flush());
        return 0;
    }
    if (strcmp(mode, "stores") == 0) {
        /* Under the environment the parent set (PMDK variables): data right. */
        size_t mlen;
        char *m = pmem_map_file(arg, 1 << 16, PMEM_FILE_CREATE, 0600, &mlen, NULL);
        int ok = m != NULL;
        static char src[65536];
        for (size_t i = 0; i < sizeof src; i++)
            src[i] = (char)(i * 13);
        for (size_t n = 1; ok && n <= sizeof src; n *= 4) {
            pmem_memcpy_persist(m, src, n);
            pmem_memset_nodrain(m + n / 2, 1, n / 4);
            pmem_memmove(m + 1, m, n / 2, PMEM_F_MEM_NONTEMPORAL);
            pmem_drain();
            pmem_persist(m, n);
            ok = ok && m[0] == src[0];
        }
        printf("%d\n", ok);
        if (m)
            pmem_unmap(m, mlen);
        unlink(arg);
        return 0;
    }
    return 2;
}

/* Runs this program as a child with one extra variable; its first line. */
static int run_child(const char *env, const char *mode, const char *arg, char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (env)
            putenv((char *)env);
        execl(self, self, "--child", mode, arg, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    ssize_t k = read(fds[0], out, cap - 1);
    out[k > 0 ? k : 0] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_is_pmem_force(void)
{
    char out[64];
    char *p = path_of("force");
    struct {
        const char *env, *want;
    } cases[] = {
        /* is_pmem of the new mapping, again, of the stack, of 0 bytes, of NULL and 0 bytes */
        {"PMEM_IS_PMEM_FORCE=1", "1 1 1 0 0\n"},   {"PMEM_IS_PMEM_FORCE=01", "1 1 1 0 0\n"},
        {"PMEM_IS_PMEM_FORCE=0", "0 0 0 0 0\n"},   {"PMEM_IS_PMEM_FORCE=junk", "0 0 0 0 0\n"},
        {"PMEM_IS_PMEM_FORCE=2", "0 0 0 0 0\n"},   {"PMEM_SYS_UNRELATED=1", "0 0 0 0 0\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_child(cases[i].env, "is_pmem", p, out, sizeof out);
        CHECK(rc == 0 && strcmp(out, cases[i].want) == 0, "%s: got \"%s\", want \"%s\"",
              cases[i].env, out, cases[i].want);
    }
}

static void make_region(const char *root, int i, const char *domain)
{
    char real[PATH_MAX + 100], link[PATH_MAX + 100], cmd[3 * PATH_MAX + 300];
    snprintf(real, sizeof real, "%s/devices/ndbus0/region%d", root, i);
    snprintf(link, sizeof link, "%s/bus/nd/devices/region%d", root, i);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/bus/nd/devices'", real, root);
    if (system(cmd) != 0)
        return;
    if (domain) {
        snprintf(cmd, sizeof cmd, "%s/persistence_domain", real);
        FILE *f = fopen(cmd, "w");
        if (f) {
            fputs(domain, f);
            fclose(f);
        }
    }
    if (symlink(real, link) != 0)
        perror("symlink");
}

static void test_auto_flush_fixtures(void)
{
    struct {
        const char *name, *d0, *d1, *want;
    } cases[] = {
        {"eadr", "cpu_cache\n", "cpu_cache\n", "1\n"},
        {"mixed", "cpu_cache\n", "memory_controller\n", "0\n"},
        {"adr", "memory_controller\n", NULL, "0\n"},
        {"nodomain", NULL, NULL, "0\n"},
        {"malformed", "cpu_cache", NULL, "-1\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char root[PATH_MAX + 64], env[PATH_MAX + 100], out[64];
        snprintf(root, sizeof root, "%s/sysfs-%s", dir, cases[i].name);
        make_region(root, 0, cases[i].d0);
        if (cases[i].d1)
            make_region(root, 1, cases[i].d1);
        snprintf(env, sizeof env, "PMEM_SYS_SYSFS_ROOT=%s", root);
        int rc = run_child(env, "autoflush", "-", out, sizeof out);
        CHECK(rc == 0 && strcmp(out, cases[i].want) == 0, "auto flush %s: got \"%s\" want \"%s\"",
              cases[i].name, out, cases[i].want);
    }
    char env[PATH_MAX + 100], out[64];
    snprintf(env, sizeof env, "PMEM_SYS_SYSFS_ROOT=%s/sysfs-none", dir);
    int rc = run_child(env, "autoflush", "-", out, sizeof out);
    CHECK(rc == 0 && strcmp(out, "0\n") == 0, "no nvdimm bus: got \"%s\"", out);
}

static void test_unmap_registered(void)
{
    const char *envs[] = {"PMEM_SYS_FORCE_GRANULARITY=cache_line", "PMEM_SYS_FORCE_GRANULARITY=page",
                          "PMEM_SYS_FORCE_GRANULARITY=byte"};
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        char out[16];
        int rc = run_child(envs[i], "unmap", dir, out, sizeof out);
        CHECK(rc == 0 && strcmp(out, "0\n") == 0, "%s: partial unmap of a registered mapping: \"%s\"",
              envs[i], out);
    }
}

static void test_pmdk_environment(void)
{
    const char *envs[] = {"PMEM_NO_FLUSH=1", "PMEM_NO_FLUSH=0", "PMEM_NO_MOVNT=1", "PMEM_NO_CLWB=1",
                          "PMEM_NO_CLFLUSHOPT=1", "PMEM_MOVNT_THRESHOLD=0", "PMEM_AVX=0",
                          "PMEM_AVX512F=0", "PMEM_NO_GENERIC_MEMCPY=1", "PMEM_MMAP_HINT=0x10000000000"};
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        char out[16];
        int rc = run_child(envs[i], "stores", path_of("env"), out, sizeof out);
        CHECK(rc == 0 && strcmp(out, "1\n") == 0, "%s: stores under it: \"%s\"", envs[i], out);
    }
}

int main(int argc, char **argv)
{
    self = "/proc/self/exe";
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3]);
    static char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        self = exe;
    }

    /* Which library answers? It must be the replacement. */
    Dl_info info;
    if (!dladdr((void *)pmem_map_file, &info) || !info.dli_fname) {
        fprintf(stderr, "FAIL: dladdr(pmem_map_file)\n");
        return 1;
    }
    char want[PATH_MAX], got[PATH_MAX];
    if (argc < 2 || !realpath(argv[1], want) || !realpath(info.dli_fname, got) ||
        strcmp(want, got) != 0) {
        fprintf(stderr, "FAIL: pmem_map_file comes from %s, not %s\n", info.dli_fname,
                argc > 1 ? argv[1] : "(no path given)");
        return 1;
    }
    printf("compat_test: running on %s\n", got);

    /* COMPAT_TEST_DIR chooses the filesystem (tmpfs by default). */
    const char *base = getenv("COMPAT_TEST_DIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/pmdk-compat-test.XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    test_version_and_errormsg();
    test_errormsg_per_thread();
    test_map_refusals();
    test_map_create_truncate_whole();
    test_unmap_and_is_pmem();
    test_msync_and_deep();
    test_stores();
    test_is_pmem_force();
    test_unmap_registered();
    test_auto_flush_fixtures();
    test_pmdk_environment();

    char cmd[PATH_MAX + 20];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "compat_test: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("compat_test: all %d checks passed (every call, every flag combination)\n", checks);
    return 0;
}
