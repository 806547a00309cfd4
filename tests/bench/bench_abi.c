/*
 * libpmem.so.1 (pmdk-compat, on the pmem-sys engine) against PMDK's own
 * libpmem.so.1, through the same ABI, in one process.
 *
 *   bench_abi full|smoke REPLACEMENT.so PMDK.so
 *
 * The two libraries export the same names, so each is loaded with
 * dlmopen(LM_ID_NEWLM) into a link-map namespace of its own and called
 * through function pointers resolved there: both sides pay the same
 * indirect call. Each maps its own file in PMEM_BENCH_DIR (default
 * /dev/shm) with its own pmem_map_file; run with PMEM_IS_PMEM_FORCE=1 (as
 * PMDK's own users do on tmpfs). Method as in bench.c: cold destinations
 * (a cursor walks the whole file), warm sources, batches timed with
 * CLOCK_MONOTONIC closed by MFENCE, the two libraries alternating which
 * goes first, medians reported; the last destination of every row is
 * checked afterwards. Prints a markdown table on stdout and
 * `@ abi_<row> SIZE OURS PMDK` lines (ns per operation) on stderr for
 * targets.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE 64
#define FILE_LEN ((size_t)256 << 20)

enum { OURS, PMDK };

struct lib {
    const char *name;
    void *(*map_file)(const char *, size_t, int, unsigned, size_t *, int *);
    int (*unmap)(void *, size_t);
    void *(*memcpy_persist)(void *, const void *, size_t);
    void *(*memcpy_nodrain)(void *, const void *, size_t);
    void *(*memset_persist)(void *, int, size_t);
    void *(*memcpy_flags)(void *, const void *, size_t, unsigned);
    void (*persist)(const void *, size_t);
    void (*drain)(void);
    int (*is_pmem)(const void *, size_t);
    const char *(*errormsg)(void);
    char *base;
    size_t cur;
} libs[2];

static unsigned char src[1 << 20];
static int reps;

static void *sym(void *h, const char *lib, const char *name)
{
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "bench_abi: %s: no %s\n", lib, name);
        exit(2);
    }
    return p;
}

static void load(struct lib *l, const char *path, const char *name)
{
    void *h = dlmopen(LM_ID_NEWLM, path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_abi: dlmopen %s: %s\n", path, dlerror());
        exit(2);
    }
    l->name = name;
    *(void **)&l->map_file = sym(h, path, "pmem_map_file");
    *(void **)&l->unmap = sym(h, path, "pmem_unmap");
    *(void **)&l->memcpy_persist = sym(h, path, "pmem_memcpy_persist");
    *(void **)&l->memcpy_nodrain = sym(h, path, "pmem_memcpy_nodrain");
    *(void **)&l->memset_persist = sym(h, path, "pmem_memset_persist");
    *(void **)&l->memcpy_flags = sym(h, path, "pmem_memcpy");
    *(void **)&l->persist = sym(h, path, "pmem_persist");
    *(void **)&l->drain = sym(h, path, "pmem_drain");
    *(void **)&l->is_pmem = sym(h, path, "pmem_is_pmem");
    *(void **)&l->errormsg = sym(h, path, "pmem_errormsg");
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The next cold destination of n bytes. */
static char *next(struct lib *l, size_t n)
{
    size_t step = (n + LINE - 1) & ~(size_t)(LINE - 1);
    if (step < 256)
        step = 256; /* adjacent small copies would share lines */
    if (l->cur + step > FILE_LEN)
        l->cur = 0;
    char *d = l->base + l->cur;
    l->cur += step;
    return d;
}

enum kind { PERSIST, BATCH16, MEMSET, WB, FLAGS, REF_NT, REF_CLWB, REF_CLFLUSHOPT, REF_MOVDIR64B };

/* The machine's floor for one small persist, without any library: n bytes
 * (a multiple of 8, at most a line) by MOVNTI then SFENCE, by ordinary
 * stores, CLWB (or CLFLUSHOPT) and SFENCE, or a whole line by MOVDIR64B
 * (a 64-byte direct store) and SFENCE. */
static void ref_nt(char *d, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        _mm_stream_si64((long long *)(d + i), (long long)(i + 1));
    _mm_sfence();
}

__attribute__((target("clwb"))) static void ref_clwb(char *d, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        *(volatile uint64_t *)(d + i) = i + 1;
    _mm_clwb(d);
    _mm_sfence();
}

__attribute__((target("clflushopt"))) static void ref_clflushopt(char *d, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        *(volatile uint64_t *)(d + i) = i + 1;
    _mm_clflushopt(d);
    _mm_sfence();
}

__attribute__((target("movdir64b"))) static void ref_movdir64b(char *d, size_t n)
{
    uint64_t line[8] __attribute__((aligned(64)));
    for (size_t i = 0; i < 8; i++)
        line[i] = i * 8 + 1; /* what the other reference rows store */
    (void)n;                 /* always one whole line */
    _movdir64b(d, line);
    _mm_sfence();
}

/* One batch of `ops` operations; returns ns per operation. */
static double batch(struct lib *l, enum kind k, size_t n, unsigned flags, size_t ops, char **last)
{
    char *d = NULL;
    double t0 = now_ns();
    switch (k) {
    case PERSIST:
        for (size_t i = 0; i < ops; i++)
            l->memcpy_persist(d = next(l, n), src, n);
        break;
    case BATCH16:
        for (size_t i = 0; i < ops; i += 16) {
            for (size_t j = 0; j < 16; j++)
                l->memcpy_nodrain(d = next(l, n), src, n);
            l->drain();
        }
        break;
    case MEMSET:
        for (size_t i = 0; i < ops; i++)
            l->memset_persist(d = next(l, n), 0x5a, n);
        break;
    case WB:
        for (size_t i = 0; i < ops; i++) {
            volatile uint64_t *p = (volatile uint64_t *)(d = next(l, n));
            for (size_t w = 0; w < n / 8; w++)
                p[w] = w * 3 + 1;
            l->persist(d, n);
        }
        break;
    case REF_NT:
    case REF_CLWB:
    case REF_CLFLUSHOPT:
    case REF_MOVDIR64B:
        for (size_t i = 0; i < ops; i++) {
            d = next(l, n);
            if (k == REF_NT)
                ref_nt(d, n);
            else if (k == REF_CLWB)
                ref_clwb(d, n);
            else if (k == REF_CLFLUSHOPT)
                ref_clflushopt(d, n);
            else
                ref_movdir64b(d, n);
        }
        break;
    case FLAGS:
        for (size_t i = 0; i < ops; i += 16) {
            for (size_t j = 0; j < 16; j++)
                l->memcpy_flags(d = next(l, n), src, n, flags);
            /* NODRAIN and NOFLUSH leave the drain to the caller. */
            if (flags & 33u)
                l->drain();
        }
        break;
    }
    _mm_mfence();
    double t = (now_ns() - t0) / (double)ops;
    *last = d;
    return t;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int checks_failed;

static void row(const char *key, const char *label, enum kind k, size_t n, unsigned flags)
{
    size_t ops = (size_t)(1 << 20) / (n < 64 ? 64 : n);
    ops = ops < 32 ? 32 : ops > 1024 ? 1024 : ops;
    ops = (ops + 15) & ~(size_t)15;
    double t[2][64];
    char *last[2] = {0, 0};
    for (int r = 0; r < reps; r++) {
        for (int s = 0; s < 2; s++) {
            int who = (r + s) % 2; /* alternate which goes first */
            t[who][r] = batch(&libs[who], k, n, flags, ops, &last[who]);
        }
    }
    double med[2];
    for (int w = 0; w < 2; w++) {
        qsort(t[w], (size_t)reps, sizeof(double), cmp);
        med[w] = t[w][reps / 2];
        /* Honest loops: the last destination holds what was written. */
        int ok = 1;
        if (k == MEMSET)
            for (size_t i = 0; i < n; i++)
                ok &= (unsigned char)last[w][i] == 0x5a;
        else if (k == WB)
            for (size_t i = 0; i < n / 8; i++)
                ok &= ((uint64_t *)last[w])[i] == i * 3 + 1;
        else if (k >= REF_NT)
            for (size_t i = 0; i < n; i += 8)
                ok &= *(uint64_t *)(last[w] + i) == i + 1;
        else
            ok = memcmp(last[w], src, n) == 0;
        if (!ok) {
            fprintf(stderr, "bench_abi: %s %zu B: %s's last destination is wrong\n", key, n, libs[w].name);
            checks_failed++;
        }
    }
    char size[32];
    if (n >= 1024)
        snprintf(size, sizeof size, "%zu KiB", n / 1024);
    else
        snprintf(size, sizeof size, "%zu B", n);
    printf("| %s | %s | %.1f ns | %.1f ns | %.2f× |\n", label, size, med[OURS], med[PMDK], med[OURS] / med[PMDK]);
    fprintf(stderr, "@ abi_%s %zu %.3f %.3f\n", key, n, med[OURS], med[PMDK]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "full") && strcmp(argv[1], "smoke"))) {
        fprintf(stderr, "usage: bench_abi full|smoke REPLACEMENT.so PMDK.so\n");
        return 2;
    }
    reps = strcmp(argv[1], "full") == 0 ? 21 : 3;
    if (getenv("PMEM_BENCH_REPS"))
        reps = atoi(getenv("PMEM_BENCH_REPS"));
    if (reps < 1 || reps > 64)
        reps = 21;
    load(&libs[OURS], argv[2], "replacement");
    load(&libs[PMDK], argv[3], "PMDK");
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 31 + 7);

    const char *dir = getenv("PMEM_BENCH_DIR") ? getenv("PMEM_BENCH_DIR") : "/dev/shm";
    for (int w = 0; w < 2; w++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/pmem-bench-abi.%d.%d", dir, (int)getpid(), w);
        size_t len;
        int isp;
        libs[w].base = libs[w].map_file(path, FILE_LEN, 1 | 2 /* CREATE|EXCL */, 0600, &len, &isp);
        if (!libs[w].base) {
            fprintf(stderr, "bench_abi: %s: pmem_map_file %s: %s\n", libs[w].name, path, libs[w].errormsg());
            return 2;
        }
        unlink(path); /* the mapping keeps it */
        memset(libs[w].base, 0, FILE_LEN); /* fault every page in first */
        printf("%s%s: pmem_is_pmem = %d", w ? ", " : "\nBoth libraries: ", libs[w].name, isp);
    }
    printf(" (PMEM_IS_PMEM_FORCE=%s)\n\n", getenv("PMEM_IS_PMEM_FORCE") ? getenv("PMEM_IS_PMEM_FORCE") : "unset");
    printf("| call (the same through both libraries) | size | replacement | PMDK | ratio |\n");
    printf("|---|---:|---:|---:|---:|\n");

    const size_t per_op[] = {8, 64, 256, 1024, 4096, 65536};
    for (size_t i = 0; i < sizeof per_op / sizeof per_op[0]; i++)
        row("persist", "`pmem_memcpy_persist`", PERSIST, per_op[i], 0);
    const size_t batched[] = {8, 64, 256, 1024, 4096};
    for (size_t i = 0; i < sizeof batched / sizeof batched[0]; i++)
        row("batch16", "16×`pmem_memcpy_nodrain` + `pmem_drain`", BATCH16, batched[i], 0);
    const size_t fill[] = {8, 64, 256, 4096, 65536};
    for (size_t i = 0; i < sizeof fill / sizeof fill[0]; i++)
        row("memset", "`pmem_memset_persist`", MEMSET, fill[i], 0);
    const size_t wb[] = {8, 64, 256, 4096};
    for (size_t i = 0; i < sizeof wb / sizeof wb[0]; i++)
        row("wb", "stores + `pmem_persist`", WB, wb[i], 0);
    static const struct {
        const char *key, *label;
        unsigned flags;
    } fl[] = {
        {"f_none", "`pmem_memcpy(0)`", 0},
        {"f_nodrain", "16×`pmem_memcpy(NODRAIN)` + `pmem_drain`", 1},
        {"f_nt", "`pmem_memcpy(NONTEMPORAL)`", 2},
        {"f_t", "`pmem_memcpy(TEMPORAL)`", 4},
        {"f_wc", "`pmem_memcpy(WC)`", 8},
        {"f_wb", "`pmem_memcpy(WB)`", 16},
        {"f_noflush", "16×`pmem_memcpy(NOFLUSH)` + `pmem_drain`", 32},
    };
    const size_t fsz[] = {64, 256, 4096};
    for (size_t f = 0; f < sizeof fl / sizeof fl[0]; f++)
        for (size_t i = 0; i < sizeof fsz / sizeof fsz[0]; i++)
            row(fl[f].key, fl[f].label, FLAGS, fsz[i], fl[f].flags);

    /* The floor: the same stores with no library at all, on each mapping
     * (so "replacement" and "PMDK" are two samples of the same loop). */
    if (__builtin_cpu_supports("sse2"))
        for (size_t n = 8; n <= 64; n *= 8)
            row("ref_nt", "(reference) MOVNTI + SFENCE, no library", REF_NT, n, 0);
    unsigned a, b, c, dd;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(dd) : "a"(7), "c"(0));
    if (b & (1u << 24)) /* CPUID.7.0:EBX.CLWB */
        for (size_t n = 8; n <= 64; n *= 8)
            row("ref_clwb", "(reference) stores + CLWB + SFENCE, no library", REF_CLWB, n, 0);
    else
        printf("\nSKIPPED: the CLWB reference rows (no CLWB on this CPU)\n");
    if (b & (1u << 23)) /* CPUID.7.0:EBX.CLFLUSHOPT */
        for (size_t n = 8; n <= 64; n *= 8)
            row("ref_cfo", "(reference) stores + CLFLUSHOPT + SFENCE, no library", REF_CLFLUSHOPT, n, 0);
    else
        printf("\nSKIPPED: the CLFLUSHOPT reference rows (no CLFLUSHOPT on this CPU)\n");
    if (c & (1u << 28)) /* CPUID.7.0:ECX.MOVDIR64B */
        row("ref_md64", "(reference) MOVDIR64B + SFENCE, no library", REF_MOVDIR64B, 64, 0);
    else
        printf("\nSKIPPED: the MOVDIR64B reference row (no MOVDIR64B on this CPU)\n");

    for (int w = 0; w < 2; w++)
        libs[w].unmap(libs[w].base, FILE_LEN);
    if (checks_failed) {
        fprintf(stderr, "bench_abi: %d rows wrote wrong data\n", checks_failed);
        return 1;
    }
    return 0;
}
