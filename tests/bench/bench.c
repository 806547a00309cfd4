/*
 * pmem-sys against PMDK's libpmem, side by side, in one process.
 *
 *   bench full|smoke [--dir DIR]
 *
 * One file (DIR/pmem-sys-bench.<pid>, 1 GiB; DIR defaults to /dev/shm) is
 * mapped twice: by pmem_sys_map_file() with cache-line granularity forced,
 * and by PMDK's pmem_map_file() (run with PMEM_IS_PMEM_FORCE=1). Every row
 * runs the same loop shape for both libraries on the same offsets of the
 * same file, alternating which library goes first on each repetition.
 *
 * Method (what makes the two columns comparable):
 *  - destinations walk one shared cursor through the whole 1 GiB file, so
 *    no destination line is in a cache when it is written (cold); sources
 *    are a warm buffer, offset 0 for every copy;
 *  - a repetition times a batch of operations with CLOCK_MONOTONIC and
 *    ends with MFENCE before the clock is read, so a write-back or
 *    non-temporal store still in flight is counted;
 *  - each row: median, min and max over the repetitions, the involuntary
 *    context switches (getrusage ru_nivcsw) during its repetitions, and
 *    the ratio of the medians (time, ours / PMDK: below 1 is faster);
 *  - after its repetitions each copy row checks the bytes of its last
 *    destination, so a loop that stopped copying cannot look fast.
 *
 * Output: markdown on stdout. Built by tests/bench/run.sh; -DHAVE_PMDK
 * links PMDK, without it only this library's columns are measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <pmem.h>
#ifdef HAVE_PMDK
#include <libpmem.h>
#endif

#ifndef PMDK_VERSION
#define PMDK_VERSION "unknown"
#endif

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define LINE 64

static size_t FILE_LEN = GiB;
static int smoke;
static int reps;
static int have_pmdk;

/* The file, mapped by each library, and a plain mmap of it that this
 * library never registered (the mapping-lookup row). */
enum lib { OURS, PMDK, PLAIN, NLIB };
static char *base[NLIB];
static char *src;               /* warm source, 256 MiB */
static char *rbuf;              /* destination of reads, 16 MiB */
#define SRC_LEN (256 * MiB)
#define RBUF_LEN (16 * MiB)

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long nivcsw(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_nivcsw;
}

/* ---- the destination walk ------------------------------------------- */

struct walk {
    size_t lo, hi;      /* window of the file, offsets */
    size_t cur;
};

/* Bytes added to every destination: 0 (line-aligned) except in the
 * misaligned rows, whose copies start and end inside a line. */
static size_t misalign;

static inline size_t walk_next(struct walk *w, size_t n)
{
    size_t step = (n + misalign + LINE - 1) & ~(size_t)(LINE - 1);
    if (w->cur + step > w->hi)
        w->cur = w->lo;
    size_t off = w->cur;
    w->cur += step;
    return off + misalign;
}

/* ---- reference loops: the machine's limits --------------------------- */

__attribute__((target("avx2"))) static void nt_store_loop(char *d, size_t n)
{
    __m256i v = _mm256_set1_epi8(0x5a);
    for (size_t i = 0; i + LINE <= n; i += LINE) {
        _mm256_stream_si256((__m256i *)(d + i), v);
        _mm256_stream_si256((__m256i *)(d + i + 32), v);
    }
    _mm_sfence();
}

__attribute__((target("avx2"))) static void nt_copy_loop(char *d, const char *s, size_t n)
{
    for (size_t i = 0; i + LINE <= n; i += LINE) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + i + 32));
        _mm256_stream_si256((__m256i *)(d + i), a);
        _mm256_stream_si256((__m256i *)(d + i + 32), b);
    }
    _mm_sfence();
}

/* The same loops with SSE2 (baseline on x86_64), for CPUs without AVX2. */
static void nt_store_loop_sse2(char *d, size_t n)
{
    __m128i v = _mm_set1_epi8(0x5a);
    for (size_t i = 0; i + LINE <= n; i += LINE)
        for (size_t j = 0; j < LINE; j += 16)
            _mm_stream_si128((__m128i *)(d + i + j), v);
    _mm_sfence();
}

static void nt_copy_loop_sse2(char *d, const char *s, size_t n)
{
    for (size_t i = 0; i + LINE <= n; i += LINE)
        for (size_t j = 0; j < LINE; j += 16)
            _mm_stream_si128((__m128i *)(d + i + j), _mm_loadu_si128((const __m128i *)(s + i + j)));
    _mm_sfence();
}

/* "AVX2" or "SSE2": the reference loops' instruction set. */
static const char *nt_isa = "AVX2";

static void nt_store_ref(char *d, size_t n)
{
    if (nt_isa[0] == 'A')
        nt_store_loop(d, n);
    else
        nt_store_loop_sse2(d, n);
}

static void nt_copy_ref(char *d, const char *s, size_t n)
{
    if (nt_isa[0] == 'A')
        nt_copy_loop(d, s, n);
    else
        nt_copy_loop_sse2(d, s, n);
}

/* Ordinary 8-byte stores, not glibc memset (which may choose other
 * stores): the lines the write-back rows then flush. */
static void plain_stores(char *d, size_t n, uint64_t v)
{
    volatile uint64_t *p = (volatile uint64_t *)d;
    for (size_t i = 0; i < n / 8; i++)
        p[i] = v;
}

/* ---- the operations --------------------------------------------------- */

enum kind {
    K_PERSIST,      /* ours: memcpy_to_pmem + wmb_pmem; PMDK: pmem_memcpy_persist */
    K_BATCH16,      /* 16 x (memcpy_to_pmem | pmem_memcpy_nodrain), one fence */
    K_CLEAR,        /* clear_pmem + wmb_pmem vs pmem_memset_persist(0) */
    K_MEMSET,       /* pmem_sys_memset + wmb_pmem vs pmem_memset_persist(0x5a) */
    K_WB,           /* ordinary stores, then arch_wb_cache_pmem + wmb_pmem vs pmem_persist */
    K_READ,         /* memcpy_from_pmem vs glibc memcpy, from the cold file */
    K_MEMCPY,       /* reference: glibc memcpy into the file, no flush */
    K_NTSTORE,      /* reference: non-temporal stores of a register (AVX2, else SSE2) */
    K_NTCOPY,       /* reference: loads + non-temporal stores (AVX2, else SSE2) */
    K_STORES,       /* reference: the ordinary stores of K_WB alone */
    K_READ_GLIBC,   /* glibc memcpy from the cold file: K_READ's comparison */
};

static const char *kind_name[] = {
    [K_PERSIST] = "persist", [K_BATCH16] = "batched16", [K_CLEAR] = "clear",
    [K_MEMSET] = "memset", [K_WB] = "wb", [K_READ] = "read",
    [K_MEMCPY] = "memcpy", [K_NTSTORE] = "ntstore", [K_NTCOPY] = "ntcopy",
    [K_STORES] = "stores", [K_READ_GLIBC] = "read-memcpy",
};

/* Runs `ops` operations of `kind` by library `lib` (OURS, PMDK or PLAIN:
 * ours into the unregistered mapping). Not timed here. */
static void batch(int lib, int kind, struct walk *w, size_t n, size_t ops)
{
    char *b = base[lib];
    size_t i, j;
    if (lib == OURS || lib == PLAIN) {
        switch (kind) {
        case K_PERSIST:
            for (i = 0; i < ops; i++) {
                memcpy_to_pmem(b + walk_next(w, n), src, n);
                wmb_pmem();
            }
            return;
        case K_BATCH16:
            for (i = 0; i < ops; i += 16) {
                for (j = 0; j < 16; j++)
                    memcpy_to_pmem(b + walk_next(w, n), src, n);
                wmb_pmem();
            }
            return;
        case K_CLEAR:
            for (i = 0; i < ops; i++) {
                clear_pmem(b + walk_next(w, n), n);
                wmb_pmem();
            }
            return;
        case K_MEMSET:
            for (i = 0; i < ops; i++) {
                pmem_sys_memset(b + walk_next(w, n), 0x5a, n);
                wmb_pmem();
            }
            return;
        case K_WB:
            for (i = 0; i < ops; i++) {
                char *d = b + walk_next(w, n);
                plain_stores(d, n, i);
                arch_wb_cache_pmem(d, n);
                wmb_pmem();
            }
            return;
        case K_READ:
            for (i = 0; i < ops; i++)
                memcpy_from_pmem(rbuf, b + walk_next(w, n), n);
            return;
        case K_MEMCPY:
            for (i = 0; i < ops; i++)
                memcpy(b + walk_next(w, n), src, n);
            return;
        case K_NTSTORE:
            for (i = 0; i < ops; i++)
                nt_store_ref(b + walk_next(w, n), n);
            return;
        case K_NTCOPY:
            for (i = 0; i < ops; i++)
                nt_copy_ref(b + walk_next(w, n), src, n);
            return;
        case K_STORES:
            for (i = 0; i < ops; i++)
                plain_stores(b + walk_next(w, n), n, i);
            return;
        case K_READ_GLIBC:
            /* PMDK has no read function; glibc memcpy is what its users call. */
            for (i = 0; i < ops; i++)
                memcpy(rbuf, b + walk_next(w, n), n);
            return;
        }
    }
#ifdef HAVE_PMDK
    switch (kind) {
    case K_PERSIST:
        for (i = 0; i < ops; i++)
            pmem_memcpy_persist(b + walk_next(w, n), src, n);
        return;
    case K_BATCH16:
        for (i = 0; i < ops; i += 16) {
            for (j = 0; j < 16; j++)
                pmem_memcpy_nodrain(b + walk_next(w, n), src, n);
            pmem_drain();
        }
        return;
    case K_CLEAR:
        for (i = 0; i < ops; i++)
            pmem_memset_persist(b + walk_next(w, n), 0, n);
        return;
    case K_MEMSET:
        for (i = 0; i < ops; i++)
            pmem_memset_persist(b + walk_next(w, n), 0x5a, n);
        return;
    case K_WB:
        for (i = 0; i < ops; i++) {
            char *d = b + walk_next(w, n);
            plain_stores(d, n, i);
            pmem_persist(d, n);
        }
        return;
    }
#endif
    fprintf(stderr, "bench: no %s operation for library %d\n", kind_name[kind], lib);
    exit(2);
}

/* The bytes the last operation of a batch must have left at `off`. */
static void verify(int lib, int kind, size_t off, size_t n, size_t last_i)
{
    const char *d = base[lib] + off;
    int bad = 0;
    switch (kind) {
    case K_PERSIST: case K_BATCH16: case K_MEMCPY: case K_NTCOPY:
        bad = memcmp(d, src, n) != 0;
        break;
    case K_READ: case K_READ_GLIBC:
        bad = memcmp(rbuf, d, n) != 0;
        break;
    case K_CLEAR: case K_MEMSET: case K_NTSTORE: {
        int c = kind == K_CLEAR ? 0 : 0x5a;
        for (size_t i = 0; i < n && !bad; i++)
            bad = d[i] != (char)c;
        break;
    }
    case K_WB: case K_STORES:
        for (size_t i = 0; i < n / 8 && !bad; i++)
            bad = ((const uint64_t *)d)[i] != last_i;
        break;
    }
    if (bad) {
        fprintf(stderr, "bench: %s of %zu bytes by library %d left wrong bytes at offset %zu\n",
                kind_name[kind], n, lib, off);
        exit(1);
    }
}

/* ---- statistics ------------------------------------------------------- */

struct stat3 {
    double med, min, max;   /* ns per operation */
    long csw;               /* involuntary context switches, all reps */
    int valid;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct stat3 summarize(double *v, int n, long csw)
{
    struct stat3 s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.csw = csw;
    s.valid = 1;
    return s;
}

/* How many operations one repetition runs: enough bytes and time to be
 * well above the clock's resolution, few enough that a full run stays
 * within minutes. */
static size_t ops_for(size_t n, int kind)
{
    size_t budget = smoke ? 2 * MiB : 48 * MiB;
    /* batched copies take about 20 ns each: more of them per repetition */
    size_t cap = smoke ? 64 : kind == K_BATCH16 ? 16384 : 2048;
    size_t ops = budget / n;
    if (ops > cap)
        ops = cap;
    if (ops < 1)
        ops = 1;
    if (kind == K_BATCH16)
        ops = (ops + 15) / 16 * 16;
    return ops;
}

/* One shared cursor through the whole file: every library and every row
 * continues where the last one stopped. */
static struct walk file_walk;

static double time_batch(int lib, int kind, struct walk *w, size_t n, size_t ops, size_t *last_off)
{
    size_t before = w->cur;
    _mm_mfence();
    uint64_t t0 = now_ns();
    batch(lib, kind, w, n, ops);
    _mm_mfence();
    uint64_t t1 = now_ns();
    /* the offset of the last operation, recomputed (walk_next is cheap) */
    struct walk replay = *w;
    replay.cur = before;
    size_t off = 0;
    for (size_t i = 0; i < ops; i++)
        off = walk_next(&replay, n);
    *last_off = off;
    return (double)(t1 - t0) / (double)ops;
}

/* Measures libraries a and b (b may be -1) on one row, alternating. */
static void measure(int kind_a, int lib_a, int kind_b, int lib_b, size_t n, struct walk *w,
                    struct stat3 *sa, struct stat3 *sb)
{
    size_t ops = ops_for(n, kind_a);
    double va[64], vb[64];
    long ca = 0, cb = 0;
    size_t off;
    /* one unrecorded round of each: page tables, lazy binding, resolvers */
    time_batch(lib_a, kind_a, w, n, ops < 16 ? ops : 16, &off);
    if (lib_b >= 0)
        time_batch(lib_b, kind_b, w, n, ops < 16 ? ops : 16, &off);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int first_a = (r % 2 == 0);
            int do_a = (k == 0) == first_a;
            if (!do_a && lib_b < 0)
                continue;
            int lib = do_a ? lib_a : lib_b, kind = do_a ? kind_a : kind_b;
            long c0 = nivcsw(RUSAGE_THREAD);
            double t = time_batch(lib, kind, w, n, ops, &off);
            long c1 = nivcsw(RUSAGE_THREAD);
            if (do_a) {
                va[r] = t;
                ca += c1 - c0;
            } else {
                vb[r] = t;
                cb += c1 - c0;
            }
            verify(lib, kind, off, n, ops - 1);
        }
    }
    *sa = summarize(va, reps, ca);
    if (lib_b >= 0)
        *sb = summarize(vb, reps, cb);
    else
        sb->valid = 0;
}

/* ---- two threads ------------------------------------------------------ */

static pthread_barrier_t bar_start, bar_end;
static struct {
    int lib, kind, quit;
    size_t n, ops;
} job;
static struct walk half_walk[2];

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_barrier_wait(&bar_start);
        if (job.quit)
            return NULL;
        batch(job.lib, job.kind, &half_walk[1], job.n, job.ops);
        _mm_mfence();
        pthread_barrier_wait(&bar_end);
    }
}

static double time_batch2(int lib, int kind, size_t n, size_t ops)
{
    job.lib = lib;
    job.kind = kind;
    job.n = n;
    job.ops = ops;
    _mm_mfence();
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&bar_start);
    batch(lib, kind, &half_walk[0], n, ops);
    _mm_mfence();
    pthread_barrier_wait(&bar_end);
    uint64_t t1 = now_ns();
    return (double)(t1 - t0) / (double)ops;  /* per pair of operations */
}

static void measure2(int kind_a, int lib_a, int kind_b, int lib_b, size_t n,
                     struct stat3 *sa, struct stat3 *sb)
{
    size_t ops = ops_for(n, kind_a);
    double va[64], vb[64];
    long ca = 0, cb = 0;
    time_batch2(lib_a, kind_a, n, 1);
    if (lib_b >= 0)
        time_batch2(lib_b, kind_b, n, 1);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int do_a = (k == 0) == (r % 2 == 0);
            if (!do_a && lib_b < 0)
                continue;
            long c0 = nivcsw(RUSAGE_SELF);
            double t = time_batch2(do_a ? lib_a : lib_b, do_a ? kind_a : kind_b, n, ops);
            long c1 = nivcsw(RUSAGE_SELF);
            if (do_a) {
                va[r] = t;
                ca += c1 - c0;
            } else {
                vb[r] = t;
                cb += c1 - c0;
            }
        }
    }
    *sa = summarize(va, reps, ca);
    if (lib_b >= 0)
        *sb = summarize(vb, reps, cb);
    else
        sb->valid = 0;
}

/* ---- output ----------------------------------------------------------- */

static const char *size_str(size_t n)
{
    static char b[8][32];
    static int k;
    char *s = b[k++ % 8];
    if (n >= MiB && n % MiB == 0)
        snprintf(s, 32, "%zu MiB", n / MiB);
    else if (n >= KiB && n % KiB == 0)
        snprintf(s, 32, "%zu KiB", n / KiB);
    else
        snprintf(s, 32, "%zu B", n);
    return s;
}

static const char *ns_str(double ns)
{
    static char b[16][24];
    static int k;
    char *s = b[k++ % 16];
    if (ns < 10)
        snprintf(s, 24, "%.1f ns", ns);
    else if (ns < 10000)
        snprintf(s, 24, "%.0f ns", ns);
    else if (ns < 10e6)
        snprintf(s, 24, "%.1f µs", ns / 1e3);
    else
        snprintf(s, 24, "%.1f ms", ns / 1e6);
    return s;
}

/* bytes per operation -> GB/s (10^9 bytes per second) */
static double gbps(size_t bytes, double ns) { return (double)bytes / ns; }

static const char *cell(const struct stat3 *s, size_t bytes)
{
    static char b[8][96];
    static int k;
    char *c = b[k++ % 8];
    if (!s->valid)
        snprintf(c, 96, "–");
    else if (bytes >= MiB)
        snprintf(c, 96, "%.2f GB/s (%.2f–%.2f)", gbps(bytes, s->med), gbps(bytes, s->max), gbps(bytes, s->min));
    else
        snprintf(c, 96, "%s (%s–%s)", ns_str(s->med), ns_str(s->min), ns_str(s->max));
    return c;
}

static const char *ratio_str(const struct stat3 *a, const struct stat3 *b)
{
    static char r[8][16];
    static int k;
    char *c = r[k++ % 8];
    if (!a->valid || !b->valid)
        snprintf(c, 16, "–");
    else
        snprintf(c, 16, "%.2f", a->med / b->med);
    return c;
}

static void table_head(const char *title, const char *a, const char *b)
{
    printf("\n### %s\n\n", title);
    printf("| operation | size | %s | %s | time %s/%s | invol. csw |\n", a, b, a, b);
    printf("|---|---:|---:|---:|---:|---:|\n");
}

static void row(const char *op, size_t n, size_t bytes, const struct stat3 *a, const struct stat3 *b)
{
    printf("| %s | %s | %s | %s | %s | %ld / %ld |\n", op, size_str(n), cell(a, bytes), cell(b, bytes),
           ratio_str(a, b), a->csw, b->valid ? b->csw : 0L);
    fflush(stdout);
}

/* Machine-readable lines for run.sh's target check:
 *   @ key ours_med other_med   (ns per operation) */
static void record(const char *key, size_t n, const struct stat3 *a, const struct stat3 *b)
{
    fprintf(stderr, "@ %s %zu %.3f %.3f\n", key, n, a->med, b->valid ? b->med : 0.0);
}

/* ---- setup ------------------------------------------------------------ */

/* The 1-, 5- and 15-minute load averages, to judge how shared the
 * machine was. */
static const char *loadavg(void)
{
    static char b[64];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(b, sizeof b, f))
        snprintf(b, sizeof b, "unknown");
    if (f)
        fclose(f);
    b[strcspn(b, "\n")] = 0;
    /* keep the three averages only */
    char *p = b;
    for (int i = 0; i < 3 && p; i++)
        p = strchr(p + 1, ' ');
    if (p)
        *p = 0;
    return b;
}

static void header(const char *path)
{
    char model[256] = "unknown";
    int family = -1, modelno = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "model name", 10) && model[0] == 'u') {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(model, sizeof model, "%s", p + 2);
                    model[strcspn(model, "\n")] = 0;
                }
            } else if (!strncmp(line, "cpu family", 10) && family < 0) {
                family = atoi(strchr(line, ':') + 1);
            } else if (!strncmp(line, "model\t", 6) && modelno < 0) {
                modelno = atoi(strchr(line, ':') + 1);
            }
        }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    printf("| | |\n|---|---|\n");
    printf("| CPU | %s (family %d, model %d), %ld online CPUs |\n", model, family, modelno,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| CPU features seen by pmem-sys | %s |\n", pmem_sys_cpu_features());
    printf("| kernel | %s %s |\n", u.sysname, u.release);
    printf("| pmem-sys | %s, table `%s`, non-temporal threshold %zu B |\n", pmem_sys_version(),
           pmem_sys_impl(), pmem_sys_movnt_threshold());
    const char *knobs = pmem_sys_knobs();
    printf("| pmem-sys knobs | %s |\n", knobs && *knobs ? knobs : "(defaults)");
#ifdef HAVE_PMDK
    printf("| PMDK libpmem | %s; pmem_is_pmem() = %d (PMEM_IS_PMEM_FORCE=%s) |\n", PMDK_VERSION,
           pmem_is_pmem(base[PMDK], FILE_LEN), getenv("PMEM_IS_PMEM_FORCE") ? getenv("PMEM_IS_PMEM_FORCE") : "unset");
#else
    printf("| PMDK libpmem | not linked (built without -DHAVE_PMDK) |\n");
#endif
    printf("| file | %s, %zu MiB, walked by one cursor (destinations cold) |\n", path, FILE_LEN / MiB);
    printf("| repetitions | %d per row and library, alternating which goes first; cells are median (min–max) |\n", reps);
    printf("| load average at start | %s (other jobs share these CPUs; see the context-switch column) |\n", loadavg());
    fflush(stdout);
}

static void setup(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pmem-sys-bench.%d", dir, (int)getpid());

    if (pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", "cache_line") != 0) {
        fprintf(stderr, "bench: %s\n", pmem_sys_errormsg());
        exit(2);
    }
    size_t mapped = 0;
    base[OURS] = pmem_sys_map_file(path, FILE_LEN, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_EXCL, 0600, &mapped);
    if (!base[OURS]) {
        fprintf(stderr, "bench: pmem_sys_map_file %s: %s\n", path, pmem_sys_errormsg());
        exit(2);
    }
    if (pmem_sys_granularity(base[OURS], FILE_LEN) != PMEM_SYS_GRANULARITY_CACHE_LINE) {
        fprintf(stderr, "bench: %s is not cache-line granular for pmem-sys: %s\n", path,
                pmem_sys_mapping_reason(base[OURS]));
        exit(2);
    }
#ifdef HAVE_PMDK
    size_t plen = 0;
    int is_pmem = 0;
    base[PMDK] = pmem_map_file(path, 0, 0, 0, &plen, &is_pmem);
    if (!base[PMDK] || plen != FILE_LEN) {
        fprintf(stderr, "bench: pmem_map_file %s: %s\n", path, pmem_errormsg());
        exit(2);
    }
    have_pmdk = 1;
#endif
    int fd = open(path, O_RDWR);
    if (fd < 0)
        die(path);
    base[PLAIN] = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base[PLAIN] == MAP_FAILED)
        die("mmap");
    close(fd);
    unlink(path);   /* the mappings keep it; nothing to clean up on exit */

    src = aligned_alloc(4096, SRC_LEN);
    rbuf = aligned_alloc(4096, RBUF_LEN);
    if (!src || !rbuf)
        die("aligned_alloc");
    for (size_t i = 0; i < SRC_LEN; i++)
        src[i] = (char)(i * 7 + 1);
    memset(rbuf, 1, RBUF_LEN);
    /* Fault every page in through every mapping: no row times a fault. */
    for (int l = 0; l < NLIB; l++)
        if (base[l])
            for (size_t o = 0; o < FILE_LEN; o += 4096)
                base[l][o] = 1;
    file_walk.lo = 0;
    file_walk.hi = FILE_LEN;
    half_walk[0].lo = half_walk[0].cur = 0;
    half_walk[0].hi = FILE_LEN / 2;
    half_walk[1].lo = half_walk[1].cur = FILE_LEN / 2;
    half_walk[1].hi = FILE_LEN;
    header(path);
}

/* ---- the rows ---------------------------------------------------------- */

static const size_t PER_OP[] = {8, 64, 256, 1 * KiB, 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB, 256 * MiB};
static const size_t BATCHED[] = {8, 64, 256, 1 * KiB, 4 * KiB, 64 * KiB};
static const size_t LARGE[] = {1 * MiB, 16 * MiB, 256 * MiB};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *B_NAME;   /* "PMDK" or "PMDK (not linked)" */

static void rows_persist(void)
{
    struct stat3 a, b;
    table_head("Per-operation persist (copy, then fence; one operation per fence)", "pmem-sys", B_NAME);
    for (size_t i = 0; i < N(PER_OP); i++) {
        measure(K_PERSIST, OURS, K_PERSIST, have_pmdk ? PMDK : -1, PER_OP[i], &file_walk, &a, &b);
        row("`memcpy_to_pmem`+`wmb_pmem` vs `pmem_memcpy_persist`", PER_OP[i], PER_OP[i], &a, &b);
        record("persist", PER_OP[i], &a, &b);
    }
    /* Copies that start 8 bytes into a line and end inside one: the
     * partial lines at both edges. */
    static const size_t MIS8[] = {8, 24, 100, 1000, 4000};
    static const size_t MIS7[] = {9, 100, 1001, 1003, 4001};
    table_head("Per-operation persist, destination 8 (whole words) or 7 (ragged ends) bytes past a line start",
               "pmem-sys", B_NAME);
    for (int m = 0; m < 2; m++) {
        const size_t *sz = m ? MIS7 : MIS8;
        size_t count = m ? N(MIS7) : N(MIS8);
        misalign = m ? 7 : 8;
        for (size_t i = 0; i < count; i++) {
            char op[96];
            snprintf(op, sizeof op, "`memcpy_to_pmem`+`wmb_pmem` vs `pmem_memcpy_persist`, +%zu", misalign);
            measure(K_PERSIST, OURS, K_PERSIST, have_pmdk ? PMDK : -1, sz[i], &file_walk, &a, &b);
            row(op, sz[i], sz[i], &a, &b);
            record(m ? "persist_mis7" : "persist_mis8", sz[i], &a, &b);
        }
    }
    misalign = 0;
    table_head("Batched: 16 copies, one fence (time per copy)", "pmem-sys", B_NAME);
    for (size_t i = 0; i < N(BATCHED); i++) {
        measure(K_BATCH16, OURS, K_BATCH16, have_pmdk ? PMDK : -1, BATCHED[i], &file_walk, &a, &b);
        row("16×`memcpy_to_pmem`+`wmb_pmem` vs 16×`pmem_memcpy_nodrain`+`pmem_drain`", BATCHED[i], BATCHED[i], &a, &b);
        record("batched", BATCHED[i], &a, &b);
    }
}

static void rows_fill_wb_read(void)
{
    static const size_t FILL[] = {64, 256, 4 * KiB, 64 * KiB, 1 * MiB};
    static const size_t WB[] = {64, 256, 4 * KiB};
    static const size_t READ[] = {64, 256, 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB};
    struct stat3 a, b;
    table_head("Fill and write-back (per operation, each fenced)", "pmem-sys", B_NAME);
    for (size_t i = 0; i < N(FILL); i++) {
        measure(K_CLEAR, OURS, K_CLEAR, have_pmdk ? PMDK : -1, FILL[i], &file_walk, &a, &b);
        row("`clear_pmem`+`wmb_pmem` vs `pmem_memset_persist(0)`", FILL[i], FILL[i], &a, &b);
        record("clear", FILL[i], &a, &b);
    }
    for (size_t i = 0; i < N(FILL); i++) {
        measure(K_MEMSET, OURS, K_MEMSET, have_pmdk ? PMDK : -1, FILL[i], &file_walk, &a, &b);
        row("`pmem_sys_memset`+`wmb_pmem` vs `pmem_memset_persist`", FILL[i], FILL[i], &a, &b);
        record("memset", FILL[i], &a, &b);
    }
    for (size_t i = 0; i < N(WB); i++) {
        measure(K_WB, OURS, K_WB, have_pmdk ? PMDK : -1, WB[i], &file_walk, &a, &b);
        row("stores + `arch_wb_cache_pmem`+`wmb_pmem` vs stores + `pmem_persist`", WB[i], WB[i], &a, &b);
        record("wb", WB[i], &a, &b);
    }
    for (size_t i = 0; i < N(WB); i++) {
        measure(K_STORES, OURS, 0, -1, WB[i], &file_walk, &a, &b);
        row("(reference) the ordinary stores alone, no write-back", WB[i], WB[i], &a, &b);
    }
    table_head("Reads from the file (cold source, warm destination)", "pmem-sys", "glibc memcpy");
    for (size_t i = 0; i < N(READ); i++) {
        /* Both columns read through this library's mapping; only the call differs. */
        measure(K_READ, OURS, K_READ_GLIBC, OURS, READ[i], &file_walk, &a, &b);
        row("`memcpy_from_pmem` vs `memcpy`", READ[i], READ[i], &a, &b);
        record("read", READ[i], &a, &b);
    }
}

static void rows_references(void)
{
    struct stat3 a, b;
    printf("\n### References: the machine's limits (1 thread; no library)\n\n");
    printf("| method | size | median (min–max) | invol. csw |\n|---|---:|---:|---:|\n");
    for (size_t i = 0; i < N(PER_OP); i++) {
        measure(K_MEMCPY, OURS, 0, -1, PER_OP[i], &file_walk, &a, &b);
        printf("| glibc `memcpy` into the file, no flush | %s | %s | %ld |\n", size_str(PER_OP[i]), cell(&a, PER_OP[i]), a.csw);
        record("ref_memcpy", PER_OP[i], &a, &b);
    }
    for (size_t i = 2; i < N(PER_OP); i++) {
        measure(K_NTCOPY, OURS, 0, -1, PER_OP[i], &file_walk, &a, &b);
        printf("| %s non-temporal copy loop + `sfence` | %s | %s | %ld |\n", nt_isa, size_str(PER_OP[i]), cell(&a, PER_OP[i]), a.csw);
        record("ref_ntcopy", PER_OP[i], &a, &b);
    }
    fflush(stdout);
    table_head("pmem-sys against the plain non-temporal copy loop, alternated (1 thread)", "pmem-sys", "NT copy loop");
    for (size_t i = 0; i < N(LARGE); i++) {
        measure(K_PERSIST, OURS, K_NTCOPY, OURS, LARGE[i], &file_walk, &a, &b);
        row("`memcpy_to_pmem`+`wmb_pmem` vs NT copy loop + `sfence`", LARGE[i], LARGE[i], &a, &b);
        record("vs_ntcopy", LARGE[i], &a, &b);
    }
    printf("\n| method | size | median (min–max) | invol. csw |\n|---|---:|---:|---:|\n");
    for (size_t i = 0; i < N(LARGE); i++) {
        measure(K_NTSTORE, OURS, 0, -1, LARGE[i], &file_walk, &a, &b);
        printf("| %s non-temporal stores of a register + `sfence` | %s | %s | %ld |\n", nt_isa, size_str(LARGE[i]), cell(&a, LARGE[i]), a.csw);
        record("ref_ntstore", LARGE[i], &a, &b);
    }
    fflush(stdout);
}

static void rows_two_threads(void)
{
    pthread_t t;
    pthread_barrier_init(&bar_start, NULL, 2);
    pthread_barrier_init(&bar_end, NULL, 2);
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        die("pthread_create");
    struct stat3 a, b;
    table_head("Two threads, each on its own half of the file (aggregate bandwidth)", "pmem-sys", B_NAME);
    for (size_t i = 0; i < N(LARGE); i++) {
        measure2(K_PERSIST, OURS, K_PERSIST, have_pmdk ? PMDK : -1, LARGE[i], &a, &b);
        row("`memcpy_to_pmem`+`wmb_pmem` vs `pmem_memcpy_persist`", LARGE[i], 2 * LARGE[i], &a, &b);
        record("persist2", LARGE[i], &a, &b);
    }
    table_head("Two threads: pmem-sys against the plain non-temporal copy loop, alternated", "pmem-sys", "NT copy loop");
    for (size_t i = 0; i < N(LARGE); i++) {
        measure2(K_PERSIST, OURS, K_NTCOPY, OURS, LARGE[i], &a, &b);
        row("`memcpy_to_pmem`+`wmb_pmem` vs NT copy loop", LARGE[i], 2 * LARGE[i], &a, &b);
        record("vs_ntcopy2", LARGE[i], &a, &b);
    }
    printf("\n| reference, 2 threads | size | aggregate median (min–max) | invol. csw |\n|---|---:|---:|---:|\n");
    for (size_t i = 0; i < N(LARGE); i++) {
        measure2(K_NTSTORE, OURS, 0, -1, LARGE[i], &a, &b);
        printf("| %s non-temporal stores | %s | %s | %ld |\n", nt_isa, size_str(LARGE[i]), cell(&a, 2 * LARGE[i]), a.csw);
        measure2(K_MEMCPY, OURS, 0, -1, LARGE[i], &a, &b);
        printf("| glibc `memcpy`, no flush | %s | %s | %ld |\n", size_str(LARGE[i]), cell(&a, 2 * LARGE[i]), a.csw);
    }
    job.quit = 1;
    pthread_barrier_wait(&bar_start);
    pthread_join(t, NULL);
    fflush(stdout);
}

/* The non-temporal threshold: this library at several thresholds, each
 * alternated with PMDK at its own default (256 B), per operation and
 * batched. */
static void rows_threshold(void)
{
    static const size_t TH[] = {0, 32, 64, 128, 256, 512, 1024};
    static const size_t SZ[] = {8, 16, 32, 48, 64, 128, 192, 256, 384, 512, 1 * KiB, 2 * KiB, 4 * KiB};
    const char *kname[2] = {"per operation", "batched 16 per fence"};
    int kinds[2] = {K_PERSIST, K_BATCH16};
    size_t saved = pmem_sys_movnt_threshold();
    for (int k = 0; k < 2; k++) {
        printf("\n### Non-temporal threshold sweep, %s: pmem-sys median (ratio to PMDK's median in the same alternation)\n\n", kname[k]);
        printf("| size |");
        for (size_t t = 0; t < N(TH); t++)
            printf(" threshold %zu |", TH[t]);
        printf(" PMDK (256) |\n|---:|");
        for (size_t t = 0; t <= N(TH); t++)
            printf("---:|");
        printf("\n");
        for (size_t s = 0; s < N(SZ); s++) {
            printf("| %s |", size_str(SZ[s]));
            double pmdk_sum = 0;
            for (size_t t = 0; t < N(TH); t++) {
                char v[32];
                snprintf(v, sizeof v, "%zu", TH[t]);
                if (pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", v) != 0) {
                    fprintf(stderr, "bench: %s\n", pmem_sys_errormsg());
                    exit(2);
                }
                struct stat3 a, b;
                measure(kinds[k], OURS, kinds[k], have_pmdk ? PMDK : -1, SZ[s], &file_walk, &a, &b);
                printf(" %s (%s) |", ns_str(a.med), ratio_str(&a, &b));
                fflush(stdout);
                pmdk_sum += b.valid ? b.med : 0;
                fprintf(stderr, "@ sweep_%s_%zu %zu %.3f %.3f\n", kinds[k] == K_PERSIST ? "persist" : "batched",
                        TH[t], SZ[s], a.med, b.valid ? b.med : 0.0);
            }
            printf(" %s |\n", have_pmdk ? ns_str(pmdk_sum / N(TH)) : "–");
        }
    }
    /* back to the default */
    if (pmem_sys_set_option("PMEM_SYS_MOVNT_THRESHOLD", NULL) != 0 || pmem_sys_movnt_threshold() != saved) {
        fprintf(stderr, "bench: could not restore the threshold (%zu): %s\n", saved, pmem_sys_errormsg());
        exit(2);
    }
    printf("\nPMDK's column is the mean of its medians across the thresholds' alternations.\n");
}

/* The mapping lookup: batched 64 B copies into this library's mapping and
 * into a plain mmap of the same file that it never registered. Then the
 * same with one page-granular mapping registered elsewhere in the process,
 * so that every call searches the table of special mappings. */
static void rows_lookup(const char *dir)
{
    struct walk wa = {0, 256 * MiB, 0}, wb = {0, 256 * MiB, 0};
    struct stat3 a, b;
    /* Run in one alternation: wa and wb walk the same offsets. */
    printf("\n### Mapping lookup: batched 64 B (16 per fence) into a registered vs an unregistered mapping\n\n");
    printf("| case | registered mapping | plain mmap of the same file | time registered/plain | invol. csw |\n|---|---:|---:|---:|---:|\n");
    for (int pass = 0; pass < 2; pass++) {
        char *extra = NULL;
        char path[4096];
        if (pass == 1) {
            snprintf(path, sizeof path, "%s/pmem-sys-bench-page.%d", dir, (int)getpid());
            size_t m = 0;
            if (pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", "page") != 0)
                exit(2);
            extra = pmem_sys_map_file(path, MiB, PMEM_SYS_FILE_CREATE | PMEM_SYS_FILE_EXCL, 0600, &m);
            if (pmem_sys_set_option("PMEM_SYS_FORCE_GRANULARITY", "cache_line") != 0)
                exit(2);
            if (!extra) {
                fprintf(stderr, "bench: pmem_sys_map_file %s: %s\n", path, pmem_sys_errormsg());
                exit(2);
            }
            unlink(path);
        }
        /* Interleave by hand: both walks share one offset sequence. */
        size_t ops = ops_for(64, K_BATCH16);
        double va[64], vb[64];
        long ca = 0, cb = 0;
        size_t off;
        time_batch(OURS, K_BATCH16, &wa, 64, 16, &off);
        time_batch(PLAIN, K_BATCH16, &wb, 64, 16, &off);
        for (int r = 0; r < reps; r++) {
            for (int k = 0; k < 2; k++) {
                int do_a = (k == 0) == (r % 2 == 0);
                long c0 = nivcsw(RUSAGE_THREAD);
                double t = time_batch(do_a ? OURS : PLAIN, K_BATCH16, do_a ? &wa : &wb, 64, ops, &off);
                long c1 = nivcsw(RUSAGE_THREAD);
                if (do_a) {
                    va[r] = t;
                    ca += c1 - c0;
                } else {
                    vb[r] = t;
                    cb += c1 - c0;
                }
                verify(do_a ? OURS : PLAIN, K_BATCH16, off, 64, 0);
            }
        }
        a = summarize(va, reps, ca);
        b = summarize(vb, reps, cb);
        printf("| %s | %s | %s | %s | %ld / %ld |\n",
               pass == 0 ? "no byte- or page-granular mapping in the process" : "one page-granular mapping registered elsewhere",
               cell(&a, 64), cell(&b, 64), ratio_str(&a, &b), a.csw, b.csw);
        fprintf(stderr, "@ lookup%d 64 %.3f %.3f\n", pass, a.med, b.med);
        if (extra && memunmap_pmem(extra) != 0) {
            fprintf(stderr, "bench: memunmap_pmem: %s\n", pmem_sys_errormsg());
            exit(2);
        }
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("PMEM_BENCH_DIR");
    if (!dir || !*dir)
        dir = "/dev/shm";
    if (argc < 2 || (strcmp(argv[1], "full") && strcmp(argv[1], "smoke"))) {
        fprintf(stderr, "usage: %s full|smoke\n", argv[0]);
        return 2;
    }
    smoke = !strcmp(argv[1], "smoke");
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2"))
        nt_isa = "SSE2";
    reps = smoke ? 3 : 21;
    if (getenv("PMEM_BENCH_REPS"))
        reps = atoi(getenv("PMEM_BENCH_REPS"));
    if (reps < 1 || reps > 63) {
        fprintf(stderr, "bench: PMEM_BENCH_REPS must be 1..63\n");
        return 2;
    }
    const char *only = getenv("PMEM_BENCH_ONLY");   /* comma list of groups, for profiling */
#define WANT(g) (!only || strstr(only, g))
    setup(dir);
    B_NAME = have_pmdk ? "PMDK" : "PMDK (not linked)";
    if (WANT("persist"))
        rows_persist();
    if (WANT("fill"))
        rows_fill_wb_read();
    if (WANT("threads"))
        rows_two_threads();
    if (WANT("refs"))
        rows_references();
    if (WANT("threshold"))
        rows_threshold();
    if (WANT("lookup"))
        rows_lookup(dir);
    printf("\nLoad average at the end of the C rows: %s.\n", loadavg());
    return 0;
}
