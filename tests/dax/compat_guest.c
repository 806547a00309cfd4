/*
 * libpmem.so.1's code (pmdk-compat, linked statically) on real DAX inside
 * the test VM: what tmpfs cannot show.
 *
 *   compat_guest fsdax DIR AUTO_FLUSH     a file on an ext4 -o dax mount
 *   compat_guest devdax DEVICE AUTO_FLUSH a device-DAX node
 *   compat_guest tmpfs DIR                a file where MAP_SYNC is refused
 *
 * AUTO_FLUSH is what pmem_has_auto_flush() must say (1 when the region's
 * persistence_domain is cpu_cache, else 0). Prints "PASS compat: ..." or
 * "FAIL compat: ..." per check; exit status 1 when one failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#if __has_include(<libpmem.h>)
#include <libpmem.h>
#else
#define PMEM_FILE_CREATE (1 << 0)
#define PMEM_FILE_EXCL (1 << 1)
#define PMEM_FILE_SPARSE (1 << 2)
#define PMEM_F_MEM_NONTEMPORAL (1U << 1)
#define PMEM_F_MEM_TEMPORAL (1U << 2)
void *pmem_map_file(const char *, size_t, int, mode_t, size_t *, int *);
int pmem_unmap(void *, size_t);
int pmem_is_pmem(const void *, size_t);
void pmem_persist(const void *, size_t);
int pmem_has_auto_flush(void);
int pmem_deep_drain(const void *, size_t);
int pmem_deep_persist(const void *, size_t);
void *pmem_memcpy_persist(void *, const void *, size_t);
void *pmem_memcpy(void *, const void *, size_t, unsigned);
void *pmem_memset_persist(void *, int, size_t);
const char *pmem_errormsg(void);
#endif

static int failures;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (cond) {                                                                      \
            printf("PASS compat: ");                                                     \
        } else {                                                                         \
            failures++;                                                                  \
            printf("FAIL compat: (errno %d, \"%s\") ", errno, pmem_errormsg());          \
        }                                                                                \
        printf(__VA_ARGS__);                                                             \
        printf("\n");                                                                    \
    } while (0)

/* Writes a pattern through every store form and reads it back. */
static int stores_read_back(char *m, size_t n)
{
    static char src[65536];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)(i * 7 + 1);
    if (n > sizeof src)
        n = sizeof src;
    pmem_memcpy_persist(m, src, n);
    int ok = memcmp(m, src, n) == 0;
    pmem_memcpy(m, src + 1, n - 1, PMEM_F_MEM_NONTEMPORAL);
    pmem_memcpy(m + 1, src, 100, PMEM_F_MEM_TEMPORAL);
    pmem_persist(m, n);
    ok = ok && memcmp(m + 1, src, 100) == 0 && memcmp(m + 101, src + 102, n - 102) == 0;
    pmem_memset_persist(m, 0x5a, 64);
    return ok && m[0] == 0x5a && m[63] == 0x5a;
}

static void fsdax(const char *dir, int auto_flush)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/compat.bin", dir);
    unlink(path);
    size_t len = 0, mib = 1 << 20;
    int isp = -1;
    errno = 1234;
    char *m = pmem_map_file(path, 4 * mib, PMEM_FILE_CREATE | PMEM_FILE_EXCL, 0600, &len, &isp);
    int e = errno;
    CHECK(m && len == 4 * mib && isp == 1, "fsdax: %s mapped with MAP_SYNC: len %zu, is_pmem %d", path, len, isp);
    if (!m)
        return;
    CHECK(e == 1234, "fsdax: errno untouched by a map that took MAP_SYNC (%d)", e);
    CHECK(pmem_is_pmem(m, len) == 1 && pmem_is_pmem(m + 7, 100) == 1, "fsdax: pmem_is_pmem of the mapping");
    CHECK(pmem_is_pmem(m, len + 1) == 0 && pmem_is_pmem(m, 0) == 0, "fsdax: one byte past it, or nothing, is not");
    CHECK(stores_read_back(m, len), "fsdax: every store form reads back");
    CHECK(pmem_deep_persist(m, 8192) == 0, "fsdax: pmem_deep_persist (msync of a MAP_SYNC range)");
    CHECK(pmem_unmap(m + mib, mib) == 0, "fsdax: unmap the second MiB");
    CHECK(pmem_is_pmem(m, mib) == 1 && pmem_is_pmem(m + 2 * mib, 2 * mib) == 1 &&
              pmem_is_pmem(m + mib, 1) == 0 && pmem_is_pmem(m, 2 * mib) == 0,
          "fsdax: after a partial unmap, pmem_is_pmem knows the hole");
    CHECK(stores_read_back(m + 3 * mib, mib) && stores_read_back(m, mib), "fsdax: both pieces still work");
    CHECK(pmem_unmap(m, 4 * mib) == 0 && pmem_is_pmem(m, 1) == 0, "fsdax: unmap the rest");
    /* The whole file again, without CREATE. */
    m = pmem_map_file(path, 0, 0, 0, &len, &isp);
    CHECK(m && len == 4 * mib && isp == 1 && m[0] == 0x5a, "fsdax: the whole file again (len 0), data kept");
    if (m)
        pmem_unmap(m, len);
    unlink(path);
    CHECK(pmem_has_auto_flush() == auto_flush, "fsdax: pmem_has_auto_flush() == %d", auto_flush);
}

static void tmpfs(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/compat.bin", dir);
    size_t len;
    int isp = -1;
    errno = 0;
    char *m = pmem_map_file(path, 1 << 20, PMEM_FILE_CREATE, 0600, &len, &isp);
    int e = errno;
    CHECK(m && isp == 0 && e == EOPNOTSUPP, "tmpfs: is_pmem 0, errno EOPNOTSUPP left by the MAP_SYNC fallback (%d)", e);
    if (m) {
        CHECK(stores_read_back(m, len), "tmpfs: every store form reads back");
        pmem_unmap(m, len);
    }
    unlink(path);
}

static long long sysfs_size(const char *dev)
{
    struct stat st;
    if (stat(dev, &st) != 0)
        return -1;
    char p[256];
    snprintf(p, sizeof p, "/sys/dev/char/%u:%u/size", major(st.st_rdev), minor(st.st_rdev));
    FILE *f = fopen(p, "r");
    long long v = -1;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void devdax(const char *dev, int auto_flush)
{
    long long size = sysfs_size(dev);
    size_t len = 0;
    int isp = -1;
    char *m = pmem_map_file(dev, 0, 0, 0, &len, &isp);
    CHECK(m && size > 0 && len == (size_t)size && isp == 1, "devdax: %s mapped whole: len %zu of %lld, is_pmem %d",
          dev, len, size, isp);
    if (!m)
        return;
    /* The last 64 KiB, restored afterwards (the test bed keeps records elsewhere). */
    static char saved[65536];
    char *end = m + len - sizeof saved;
    memcpy(saved, end, sizeof saved);
    CHECK(stores_read_back(end, sizeof saved), "devdax: every store form reads back");
    CHECK(pmem_deep_drain(end, 4096) == 0 && pmem_deep_persist(end, 4096) == 0,
          "devdax: pmem_deep_drain / pmem_deep_persist (fence, then the region's deep_flush)");
    pmem_memcpy_persist(end, saved, sizeof saved);
    CHECK(memcmp(end, saved, sizeof saved) == 0, "devdax: restored");
    CHECK(pmem_unmap(m, len) == 0, "devdax: unmap");
    m = pmem_map_file(dev, len, PMEM_FILE_CREATE | PMEM_FILE_SPARSE, 0600, &len, &isp);
    CHECK(m && isp == 1 && len == (size_t)size, "devdax: CREATE|SPARSE with the exact size are accepted and ignored");
    if (m)
        pmem_unmap(m, len);
    errno = 0;
    m = pmem_map_file(dev, 4096, PMEM_FILE_CREATE, 0600, &len, &isp);
    CHECK(!m && errno == EINVAL, "devdax: a length other than the device's is refused (EINVAL)");
    errno = 0;
    m = pmem_map_file(dev, 0, PMEM_FILE_EXCL, 0600, &len, &isp);
    CHECK(!m && errno == EINVAL, "devdax: EXCL is refused (EINVAL)");
    CHECK(pmem_has_auto_flush() == auto_flush, "devdax: pmem_has_auto_flush() == %d", auto_flush);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "fsdax") == 0)
        fsdax(argv[2], argc > 3 ? atoi(argv[3]) : 0);
    else if (argc >= 3 && strcmp(argv[1], "devdax") == 0)
        devdax(argv[2], argc > 3 ? atoi(argv[3]) : 0);
    else if (argc == 3 && strcmp(argv[1], "tmpfs") == 0)
        tmpfs(argv[2]);
    else {
        fprintf(stderr, "usage: compat_guest fsdax DIR AUTO_FLUSH | devdax DEV AUTO_FLUSH | tmpfs DIR\n");
        return 2;
    }
    return failures ? 1 : 0;
}
