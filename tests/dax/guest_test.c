/*
 * guest_test.c - exercises libpmem_sys on real (emulated) DAX inside the
 * test VM started by tests/dax/run.sh; one subcommand also runs on the host
 * to look for the records in the NVDIMM's backing file.
 *
 * Every check prints one line, "PASS <name>" or "FAIL <name>: <why>", so the
 * host can tell exactly what broke.  The exit status is 0 when every check
 * of the subcommand passed, 1 when one failed and 2 on a usage error.
 *
 * Subcommands (the init script calls them in this order, see tests/dax/init):
 *
 *   features                     the library sees the guest CPU's features
 *   impl WANT                    pmem_sys_impl() is WANT (the environment's
 *                                PMEM_SYS_NO_* knobs chose it at load time)
 *   mapping  FILE SIZE GRAN      memremap_pmem + pmem_sys_map_file on a file
 *                                (created) report granularity GRAN (byte,
 *                                cache_line, page); on byte/cache_line the
 *                                mapping must have MAP_SYNC (smaps "sf")
 *   tiers    FILE                force every copy/flush tier the CPU offers
 *                                and check copies of many sizes read back
 *   write-records FILE NONCE     one record slot per (tier, size), then a
 *                                header that commits them; prints COUNT
 *   read-records  FILE NONCE N   maps FILE again and checks the N records
 *   devdax DEV GRAN NONCE SEQ [PREV_SEQ]
 *                                maps DEV with memremap_pmem, checks GRAN,
 *                                reads record PREV_SEQ (written by the boot
 *                                before) and writes record SEQ
 *   scan-image IMAGE NONCE N_FSDAX N_DEVDAX
 *                                (host) finds exactly that many intact
 *                                records of each kind in IMAGE ("-": any)
 *
 * Records are text so that they can also be found with grep: a 4 KiB slot
 * holds "PMEMSYS-REC nonce=.. seq=.. len=.. sum=.. tier=..\n", len payload
 * bytes derived from (nonce, seq) and "\nPMEMSYS-END seq=..\n".  Slots are
 * 4 KiB aligned in files, and so also in the backing file (ext4 blocks and
 * the fsdax/devdax data offset are aligned), which is how scan-image
 * finds them without knowing the file system.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "pmem.h"

#ifndef __pmem
#define __pmem
#endif
#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

#define SLOT 4096u
#define MAX_RECORDS 255u /* slot 0 holds the header */
#define RECORDS_FILE_SIZE ((size_t)(MAX_RECORDS + 1) * SLOT)

static int failures;
static int passes;

static void pass(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("PASS ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    passes++;
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    failures++;
}

static void info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("INFO ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static const char *liberr(void)
{
    const char *m = pmem_sys_errormsg();
    return m && *m ? m : strerror(errno);
}

/* ---------------------------------------------------------------- helpers */

static const char *gran_name(int g)
{
    switch (g) {
    case PMEM_SYS_GRANULARITY_BYTE: return "byte";
    case PMEM_SYS_GRANULARITY_CACHE_LINE: return "cache_line";
    case PMEM_SYS_GRANULARITY_PAGE: return "page";
    default: return "unknown";
    }
}

static int parse_gran(const char *s)
{
    if (!strcmp(s, "byte")) return PMEM_SYS_GRANULARITY_BYTE;
    if (!strcmp(s, "cache_line")) return PMEM_SYS_GRANULARITY_CACHE_LINE;
    if (!strcmp(s, "page")) return PMEM_SYS_GRANULARITY_PAGE;
    return -1;
}

/* Deterministic bytes from (nonce, seq): xorshift64*, printable. */
static void fill_payload(char *dst, size_t n, uint32_t nonce, unsigned seq)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t x = ((uint64_t)nonce << 32) ^ (seq * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        dst[i] = alphabet[(x * 0x2545F4914F6CDD1Dull) >> 58];
    }
}

/* FNV-1a, 32 bits. */
static uint32_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

/* Whether the mapping that contains addr has VmFlags "sf" (MAP_SYNC). */
static int smaps_has_sync(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    uintptr_t a = (uintptr_t)addr;
    int inside = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 && strchr(line, ' ') &&
            line[strspn(line, "0123456789abcdef")] == '-') {
            inside = a >= lo && a < hi;
            continue;
        }
        if (inside && !strncmp(line, "VmFlags:", 8)) {
            found = strstr(line, " sf") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Whether the kernel says this file is accessed with DAX (statx). */
static int file_is_dax(const char *path)
{
    struct statx stx;
    if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx) != 0) return -1;
    if (!(stx.stx_attributes_mask & STATX_ATTR_DAX)) return -1;
    return (stx.stx_attributes & STATX_ATTR_DAX) != 0;
}

static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " \n\t");
        const char *e = p + strcspn(p, " \n\t");
        if ((size_t)(e - p) == n && !strncmp(p, word, n)) return 1;
        p = e;
    }
    return 0;
}

static int open_sized(const char *path, size_t size, int create)
{
    int fd = open(path, O_RDWR | (create ? O_CREAT : 0), 0644);
    if (fd < 0) return -1;
    struct stat st;
    if (create && fstat(fd, &st) == 0 && (size_t)st.st_size < size && ftruncate(fd, (off_t)size) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Checks a fresh mapping: granularity and, for fsdax files, MAP_SYNC. */
static void check_mapping(const char *what, void __pmem *addr, int want, int want_sync)
{
    int g = pmem_sys_granularity(addr, 64);
    const char *reason = pmem_sys_mapping_reason(addr);
    info("%s: granularity=%s reason=\"%s\"", what, gran_name(g), reason ? reason : "(null)");
    if (g == want)
        pass("%s granularity is %s", what, gran_name(want));
    else
        fail("%s granularity is %s, expected %s (reason: %s)", what, gran_name(g), gran_name(want),
             reason ? reason : "(null)");
    if (!reason || !*reason)
        fail("%s mapping reason is empty", what);
    if (want_sync == 1) {
        /* A MAP_SYNC mapping must say so, and the kernel must agree. */
        if (reason && strstr(reason, "MAP_SYNC") && strstr(reason, "accepted"))
            pass("%s reason says MAP_SYNC was accepted", what);
        else
            fail("%s reason does not say MAP_SYNC was accepted: \"%s\"", what, reason ? reason : "(null)");
        int s = smaps_has_sync(addr);
        if (s == 1)
            pass("%s is a MAP_SYNC mapping (VmFlags sf in /proc/self/smaps)", what);
        else
            fail("%s is not a MAP_SYNC mapping (smaps VmFlags sf %s)", what, s == 0 ? "missing" : "unreadable");
    } else if (want_sync == 0) {
        int s = smaps_has_sync(addr);
        if (s == 0)
            pass("%s is not a MAP_SYNC mapping (none possible here)", what);
        else
            fail("%s unexpectedly has MAP_SYNC (smaps %d)", what, s);
    }
}

/* Writes, drains and reads back a pattern at the start of a mapping. */
static void roundtrip(const char *what, void __pmem *addr, size_t len)
{
    char buf[1024], back[1024];
    if (len > sizeof buf) len = sizeof buf;
    fill_payload(buf, len, 0x5eed, (unsigned)len);
    memcpy_to_pmem(addr, buf, len);
    wmb_pmem();
    int d = pmem_sys_drain();
    memset(back, 0, sizeof back);
    int r = memcpy_from_pmem(back, addr, len);
    if (d == 0 && r == 0 && !memcmp(buf, back, len) && !memcmp(buf, (const void *)addr, len))
        pass("%s write/drain/read back", what);
    else
        fail("%s write/drain/read back (drain=%d from_pmem=%d data %s)", what, d, r,
             memcmp(buf, back, len) ? "differs" : "same");
}

/* ------------------------------------------------------------ features */

/* The library's CPU features match the kernel's /proc/cpuinfo flags. */
static int cmd_features(void)
{
    const char *feat = pmem_sys_cpu_features();
    const char *impl = pmem_sys_impl();
    info("pmem_sys_impl: %s", impl);
    info("pmem_sys_cpu_features: %s", feat);
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096] = "", flags[4096] = "";
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            snprintf(flags, sizeof flags, "%s", strchr(line, ':') ? strchr(line, ':') + 1 : "");
            break;
        }
    if (f) fclose(f);
    if (!*flags) {
        fail("features: /proc/cpuinfo has no flags line");
        return 1;
    }
    static const char *const names[] = {"sse2", "avx2", "avx512f", "clflush", "clflushopt", "clwb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int cpu = has_word(flags, names[i]), lib = has_word(feat, names[i]);
        if (cpu == lib)
            pass("features: %s %s by both the kernel and the library", names[i], cpu ? "seen" : "absent");
        else
            fail("features: %s is %s in /proc/cpuinfo but %s in pmem_sys_cpu_features()", names[i],
                 cpu ? "present" : "absent", lib ? "present" : "absent");
    }
    return failures != 0;
}

/* The engine chosen at load time from the environment's knobs. */
static int cmd_impl(const char *want)
{
    const char *impl = pmem_sys_impl();
    if (impl && !strcmp(impl, want))
        pass("environment knobs select %s at load time", want);
    else
        fail("environment knobs select \"%s\", expected %s", impl ? impl : "(null)", want);
    return failures != 0;
}

/* ------------------------------------------------------------- mapping */

static int cmd_mapping(const char *path, size_t size, const char *gran)
{
    int want = parse_gran(gran);
    if (want < 0) return 2;
    /* MAP_SYNC is expected exactly when the library claims byte/cache-line
     * granularity on a regular file. */
    int want_sync = want == PMEM_SYS_GRANULARITY_PAGE ? 0 : 1;
    char label[600];

    /* 1. memremap_pmem on a file descriptor. */
    int fd = open_sized(path, size, 1);
    if (fd < 0) {
        fail("mapping: open %s: %s", path, strerror(errno));
        return 1;
    }
    if (want_sync) {
        int dax = file_is_dax(path);
        if (dax == 1)
            pass("mapping: the kernel says %s is a DAX file (statx)", path);
        else
            fail("mapping: %s is not a DAX file according to statx (%d)", path, dax);
    }
    snprintf(label, sizeof label, "memremap_pmem(%s)", path);
    errno = 0;
    void __pmem *a = memremap_pmem(fd, 0, size);
    if (!a) {
        fail("%s returned NULL: %s", label, liberr());
    } else {
        pass("%s mapped %zu bytes", label, size);
        check_mapping(label, a, want, want_sync);
        roundtrip(label, a, 777);
        if (memunmap_pmem(a) == 0)
            pass("memunmap_pmem(%s)", path);
        else
            fail("memunmap_pmem(%s): %s", path, liberr());
    }
    close(fd);

    /* 2. pmem_sys_map_file, creating a second file. */
    char path2[520];
    snprintf(path2, sizeof path2, "%s.map_file", path);
    unlink(path2);
    size_t mapped = 0;
    snprintf(label, sizeof label, "pmem_sys_map_file(%s)", path2);
    void __pmem *b = pmem_sys_map_file(path2, size, PMEM_SYS_FILE_CREATE, 0644, &mapped);
    if (!b) {
        fail("%s returned NULL: %s", label, liberr());
    } else {
        if (mapped == size)
            pass("%s mapped %zu bytes", label, mapped);
        else
            fail("%s mapped %zu bytes, expected %zu", label, mapped, size);
        if (want_sync) {
            int dax = file_is_dax(path2);
            if (dax != 1) fail("mapping: %s is not a DAX file according to statx (%d)", path2, dax);
        }
        check_mapping(label, b, want, want_sync);
        roundtrip(label, b, 1000);
        if (memunmap_pmem(b) == 0)
            pass("memunmap_pmem(%s)", path2);
        else
            fail("memunmap_pmem(%s): %s", path2, liberr());
    }
    return failures != 0;
}

/* --------------------------------------------------------------- tiers */

struct tier {
    const char *copy;  /* avx512f, avx2, sse2, temporal */
    const char *flush; /* clwb, clflushopt, clflush */
};

static int set_opt(const char *name, const char *value)
{
    if (pmem_sys_set_option(name, value) != 0) {
        fail("pmem_sys_set_option(%s, %s): %s", name, value, liberr());
        return -1;
    }
    return 0;
}

static void reset_options(void)
{
    static const char *const names[] = {"PMEM_SYS_NO_AVX512F", "PMEM_SYS_NO_AVX2", "PMEM_SYS_NO_MOVNT",
                                        "PMEM_SYS_NO_CLWB", "PMEM_SYS_NO_CLFLUSHOPT"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) set_opt(names[i], "0");
    set_opt("PMEM_SYS_MOVNT_THRESHOLD", "");
}

/* Forces tier t with the knobs; returns 0 when pmem_sys_impl() shows it.
 * Says PASS only when loud (the first time a subcommand goes through). */
static int force_tier(const struct tier *t, int loud)
{
    reset_options();
    int c512 = !strcmp(t->copy, "avx512f"), c2 = !strcmp(t->copy, "avx2"), tmp = !strcmp(t->copy, "temporal");
    int ok = set_opt("PMEM_SYS_NO_AVX512F", c512 || tmp ? "0" : "1") == 0;
    ok &= set_opt("PMEM_SYS_NO_AVX2", c512 || c2 || tmp ? "0" : "1") == 0;
    ok &= set_opt("PMEM_SYS_NO_MOVNT", tmp ? "1" : "0") == 0;
    ok &= set_opt("PMEM_SYS_NO_CLWB", !strcmp(t->flush, "clwb") ? "0" : "1") == 0;
    ok &= set_opt("PMEM_SYS_NO_CLFLUSHOPT", !strcmp(t->flush, "clflush") ? "1" : "0") == 0;
    char want[64];
    snprintf(want, sizeof want, "x86_64/%s+%s", t->copy, t->flush);
    const char *impl = pmem_sys_impl();
    if (ok && impl && !strcmp(impl, want)) {
        if (loud) pass("tier %s: forced with the knobs", want);
        return 0;
    }
    fail("tier %s: the knobs selected \"%s\" instead", want, impl ? impl : "(null)");
    return -1;
}

/* The tiers this CPU offers, from the library's own feature list. */
static size_t offered_tiers(struct tier *out, size_t max)
{
    const char *feat = pmem_sys_cpu_features();
    const char *copies[4], *flushes[3];
    size_t nc = 0, nf = 0, n = 0;
    if (has_word(feat, "avx512f")) copies[nc++] = "avx512f";
    if (has_word(feat, "avx2")) copies[nc++] = "avx2";
    copies[nc++] = "sse2";
    copies[nc++] = "temporal";
    if (has_word(feat, "clwb")) flushes[nf++] = "clwb";
    if (has_word(feat, "clflushopt")) flushes[nf++] = "clflushopt";
    flushes[nf++] = "clflush";
    for (size_t c = 0; c < nc; c++)
        for (size_t f = 0; f < nf && n < max; f++) out[n++] = (struct tier){copies[c], flushes[f]};
    return n;
}

/* Copies of many sizes and alignments, each read back two ways. */
static int copy_battery(void __pmem *dst, size_t room, char *src, char *back, const char *label)
{
    static const size_t sizes[] = {1, 3, 8, 15, 16, 31, 63, 64, 65, 127, 128, 200, 255, 256, 257,
                                   1000, 4095, 4096, 4097, 65536 + 17, 262144 - 3, 1048576};
    unsigned bad = 0, done = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t mis = 0; mis < 3; mis++) {
            size_t n = sizes[i], doff = (mis * 7) % 64, soff = (mis * 13) % 64;
            if (n + doff + 64 > room) continue;
            fill_payload(src + soff, n, (uint32_t)i, (unsigned)(mis + 1000 * n));
            /* Guard bytes around the destination must survive. */
            char *d = (char *)dst;
            memset(back, 0xA5, 1);
            memcpy_to_pmem(d + doff + n, back, 1);
            memcpy_to_pmem(d + doff, src + soff, n);
            wmb_pmem();
            int r = memcpy_from_pmem(back, d + doff, n);
            done++;
            if (r != 0 || memcmp(back, src + soff, n) || memcmp((const char *)d + doff, src + soff, n) ||
                (unsigned char)d[doff + n] != 0xA5) {
                if (bad++ < 3)
                    fail("%s: copy of %zu bytes (dst+%zu, src+%zu) does not read back (from_pmem=%d)", label, n,
                         doff, soff, r);
            }
        }
    }
    if (!bad)
        pass("%s: %u copies from 1 byte to 1 MiB read back intact", label, done);
    else if (bad > 3)
        fail("%s: %u of %u copies wrong in all", label, bad, done);
    return bad ? -1 : 0;
}

static int cmd_tiers(const char *path)
{
    const size_t size = 4u << 20;
    int fd = open_sized(path, size, 1);
    if (fd < 0) {
        fail("tiers: open %s: %s", path, strerror(errno));
        return 1;
    }
    void __pmem *m = memremap_pmem(fd, 0, size);
    close(fd);
    if (!m) {
        fail("tiers: memremap_pmem(%s): %s", path, liberr());
        return 1;
    }
    char *src = malloc(size), *back = malloc(size);
    if (!src || !back) return 1;
    struct tier tiers[16];
    size_t n = offered_tiers(tiers, 16);
    char list[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s+%s", i ? " " : "", tiers[i].copy, tiers[i].flush);
    }
    info("tiers offered by this CPU: %s", list);
    for (size_t i = 0; i < n; i++) {
        if (force_tier(&tiers[i], 1) != 0) continue;
        char label[96];
        snprintf(label, sizeof label, "tier %s", pmem_sys_impl());
        copy_battery(m, size, src, back, label);
    }
    /* The non-temporal threshold both ways on the default tier. */
    reset_options();
    static const char *const thresholds[] = {"0", "1073741824"};
    for (size_t i = 0; i < 2; i++) {
        if (set_opt("PMEM_SYS_MOVNT_THRESHOLD", thresholds[i]) != 0) continue;
        char label[128];
        snprintf(label, sizeof label, "tier %s with PMEM_SYS_MOVNT_THRESHOLD=%s", pmem_sys_impl(), thresholds[i]);
        copy_battery(m, size, src, back, label);
    }
    reset_options();
    if (pmem_sys_drain() == 0)
        pass("tiers: pmem_sys_drain() after all tiers");
    else
        fail("tiers: pmem_sys_drain(): %s", liberr());
    memunmap_pmem(m);
    free(src);
    free(back);
    return failures != 0;
}

/* ------------------------------------------------------------- records */

#define HDR_MAGIC "PMEMSYS-HDR"
#define REC_MAGIC "PMEMSYS-REC"

static const size_t record_sizes[] = {1, 63, 64, 65, 255, 1000, 2048, 3500};
#define N_SIZES (sizeof record_sizes / sizeof record_sizes[0])

/* Formats record seq of length len into slot (4 KiB); returns bytes used. */
static size_t format_record(char *slot, uint32_t nonce, unsigned seq, size_t len, const char *tier,
                            const char *where)
{
    char payload[SLOT];
    fill_payload(payload, len, nonce, seq);
    int h = snprintf(slot, SLOT, REC_MAGIC " nonce=%08" PRIx32 " seq=%03u len=%04zu sum=%08" PRIx32 " where=%s tier=%s\n",
                     nonce, seq, len, fnv1a(payload, len), where, tier);
    memcpy(slot + h, payload, len);
    int t = snprintf(slot + h + len, SLOT - h - len, "\nPMEMSYS-END seq=%03u\n", seq);
    return (size_t)h + len + (size_t)t;
}

/* Checks one slot; returns 0 when it is record seq (any seq if seq < 0). */
static int check_record(const char *slot, uint32_t nonce, long seq, char *why, size_t whylen, unsigned *seq_out,
                        char *where, size_t wherelen)
{
    unsigned s;
    size_t len;
    uint32_t nn, sum;
    char w[32] = "", tier[64] = "";
    if (strncmp(slot, REC_MAGIC " ", sizeof REC_MAGIC) ||
        sscanf(slot, REC_MAGIC " nonce=%8" SCNx32 " seq=%u len=%zu sum=%8" SCNx32 " where=%31s tier=%63s", &nn,
               &s, &len, &sum, w, tier) != 6) {
        snprintf(why, whylen, "no record header");
        return -1;
    }
    if (nn != nonce || (seq >= 0 && s != (unsigned long)seq) || len > SLOT - 256) {
        snprintf(why, whylen, "header of another record (nonce %08" PRIx32 " seq %u)", nn, s);
        return -1;
    }
    const char *nl = memchr(slot, '\n', 256);
    if (!nl) {
        snprintf(why, whylen, "header not terminated");
        return -1;
    }
    char want[SLOT];
    size_t used = format_record(want, nonce, s, len, tier, w);
    if (memcmp(slot, want, used)) {
        size_t i = 0;
        while (i < used && slot[i] == want[i]) i++;
        snprintf(why, whylen, "record seq %u differs from byte %zu on (sum %08" PRIx32 ", len %zu)", s, i, sum, len);
        return -1;
    }
    if (seq_out) *seq_out = s;
    if (where) snprintf(where, wherelen, "%s", w);
    return 0;
}

static int cmd_write_records(const char *path, uint32_t nonce)
{
    int fd = open_sized(path, RECORDS_FILE_SIZE, 1);
    if (fd < 0) {
        fail("records: open %s: %s", path, strerror(errno));
        return 1;
    }
    void __pmem *m = memremap_pmem(fd, 0, RECORDS_FILE_SIZE);
    close(fd);
    if (!m) {
        fail("records: memremap_pmem(%s): %s", path, liberr());
        return 1;
    }
    char *base = (char *)m;
    struct tier tiers[16];
    size_t nt = offered_tiers(tiers, 16);
    unsigned seq = 0;
    char slot[SLOT], back[SLOT];
    for (size_t t = 0; t < nt; t++) {
        if (force_tier(&tiers[t], 0) != 0) continue;
        for (size_t i = 0; i < N_SIZES && seq < MAX_RECORDS; i++) {
            seq++;
            memset(slot, 0, sizeof slot);
            size_t used = format_record(slot, nonce, seq, record_sizes[i], pmem_sys_impl(), "fsdax");
            char *dst = base + (size_t)seq * SLOT;
            /* Three stores of odd sizes at odd offsets, then one fence. */
            size_t h = (size_t)(strchr(slot, '\n') - slot) + 1;
            memcpy_to_pmem(dst, slot, h);
            memcpy_to_pmem(dst + h, slot + h, record_sizes[i]);
            memcpy_to_pmem(dst + h + record_sizes[i], slot + h + record_sizes[i], SLOT - h - record_sizes[i]);
            wmb_pmem();
            char why[160];
            if (memcpy_from_pmem(back, dst, SLOT) != 0 ||
                check_record(back, nonce, seq, why, sizeof why, NULL, NULL, 0) != 0) {
                fail("records: record %u (%zu bytes, %s) does not read back", seq, record_sizes[i], pmem_sys_impl());
            }
            (void)used;
        }
    }
    reset_options();
    /* The header commits the records: written and fenced after them. */
    memset(slot, 0, sizeof slot);
    snprintf(slot, sizeof slot, HDR_MAGIC " nonce=%08" PRIx32 " count=%u\n", nonce, seq);
    memcpy_to_pmem(base, slot, SLOT);
    wmb_pmem();
    if (pmem_sys_drain() != 0) fail("records: pmem_sys_drain(): %s", liberr());
    if (seq > 0 && failures == 0)
        pass("records: %u records written with memcpy_to_pmem + wmb_pmem under %zu tiers", seq, nt);
    else if (seq == 0)
        fail("records: no record written");
    printf("RECORDS-WRITTEN %u\n", seq);
    memunmap_pmem(m);
    return failures != 0;
}

static int cmd_read_records(const char *path, uint32_t nonce, unsigned expect)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        fail("read-records: open %s: %s", path, strerror(errno));
        return 1;
    }
    void __pmem *m = memremap_pmem(fd, 0, RECORDS_FILE_SIZE);
    close(fd);
    if (!m) {
        fail("read-records: memremap_pmem(%s): %s", path, liberr());
        return 1;
    }
    char slot[SLOT];
    unsigned count = 0;
    uint32_t nn = 0;
    if (memcpy_from_pmem(slot, m, SLOT) != 0 ||
        sscanf(slot, HDR_MAGIC " nonce=%8" SCNx32 " count=%u", &nn, &count) != 2 || nn != nonce) {
        fail("read-records: no header of this run in %s", path);
        memunmap_pmem(m);
        return 1;
    }
    if (count == expect)
        pass("read-records: header of this run says %u records, as written", count);
    else
        fail("read-records: header says %u records, %u were written", count, expect);
    unsigned good = 0;
    for (unsigned s = 1; s <= count && s <= MAX_RECORDS; s++) {
        char why[160];
        if (memcpy_from_pmem(slot, (const char *)m + (size_t)s * SLOT, SLOT) != 0)
            fail("read-records: memcpy_from_pmem of record %u failed: %s", s, liberr());
        else if (check_record(slot, nonce, s, why, sizeof why, NULL, NULL, 0) != 0)
            fail("read-records: record %u: %s", s, why);
        else
            good++;
    }
    if (good == count && count > 0) pass("read-records: all %u records read back intact through the library", good);
    memunmap_pmem(m);
    return failures != 0;
}

/* -------------------------------------------------------------- devdax */

static int cmd_devdax(const char *dev, const char *gran, uint32_t nonce, unsigned seq, long prev)
{
    int want = parse_gran(gran);
    if (want < 0) return 2;
    const size_t size = 2u << 20; /* device-DAX maps in units of its 2 MiB alignment */
    int fd = open(dev, O_RDWR);
    if (fd < 0) {
        fail("devdax: open %s: %s", dev, strerror(errno));
        return 1;
    }
    char label[300];
    snprintf(label, sizeof label, "memremap_pmem(%s)", dev);
    void __pmem *m = memremap_pmem(fd, 0, size);
    close(fd);
    if (!m) {
        fail("%s returned NULL: %s", label, liberr());
        return 1;
    }
    pass("%s mapped %zu bytes", label, size);
    check_mapping(label, m, want, -1);
    char slot[SLOT], back[SLOT], why[160];
    if (prev >= 0) {
        if (memcpy_from_pmem(back, (const char *)m + (size_t)prev * SLOT, SLOT) == 0 &&
            check_record(back, nonce, prev, why, sizeof why, NULL, NULL, 0) == 0)
            pass("devdax: record %ld from the previous boot read back through the library", prev);
        else
            fail("devdax: record %ld from the previous boot: %s", prev, why);
    }
    memset(slot, 0, sizeof slot);
    format_record(slot, nonce, seq, 3000, pmem_sys_impl(), "devdax");
    memcpy_to_pmem((char *)m + (size_t)seq * SLOT, slot, SLOT);
    wmb_pmem();
    if (memcpy_from_pmem(back, (const char *)m + (size_t)seq * SLOT, SLOT) == 0 &&
        check_record(back, nonce, seq, why, sizeof why, NULL, NULL, 0) == 0)
        pass("devdax: record %u written with memcpy_to_pmem + wmb_pmem reads back", seq);
    else
        fail("devdax: record %u: %s", seq, why);
    printf("RECORDS-WRITTEN 1\n");
    memunmap_pmem(m);
    return failures != 0;
}

/* ------------------------------------------------------- host: scan-image */

static int cmd_scan_image(const char *image, uint32_t nonce, long expect_fsdax, long expect_devdax)
{
    int fd = open(image, O_RDONLY);
    if (fd < 0) {
        fail("scan-image: open %s: %s", image, strerror(errno));
        return 1;
    }
    char slot[SLOT];
    unsigned fsdax = 0, devdax = 0, broken = 0;
    unsigned char seen[1024] = {0};
    off_t off = 0;
    for (;; off += SLOT) {
        ssize_t r = pread(fd, slot, SLOT, off);
        if (r != (ssize_t)SLOT) break;
        if (memcmp(slot, REC_MAGIC, sizeof REC_MAGIC - 1)) continue;
        char why[160], where[32];
        unsigned s = 0;
        uint32_t nn = 0;
        if (sscanf(slot, REC_MAGIC " nonce=%8" SCNx32, &nn) != 1 || nn != nonce) continue; /* not this run */
        if (check_record(slot, nonce, -1, why, sizeof why, &s, where, sizeof where) != 0) {
            if (broken++ < 5) fail("scan-image: damaged record at offset %lld: %s", (long long)off, why);
            continue;
        }
        if (s < sizeof seen && seen[s]++) continue; /* a stale copy (journal etc.): count once */
        if (!strcmp(where, "devdax"))
            devdax++;
        else
            fsdax++;
    }
    close(fd);
    info("scan-image: %s holds %u fsdax and %u devdax records of run %08" PRIx32, image, fsdax, devdax, nonce);
    /* An expectation of -1 means "not checked" (device-DAX overwrites the
     * start of what was the file system). */
    if (expect_fsdax >= 0) {
        if ((long)fsdax == expect_fsdax && !broken)
            pass("host: backing file holds all %u fsdax records intact", fsdax);
        else
            fail("host: backing file holds %u of %ld fsdax records (%u damaged)", fsdax, expect_fsdax, broken);
    }
    if (expect_devdax >= 0) {
        if ((long)devdax == expect_devdax)
            pass("host: backing file holds all %u devdax records intact", devdax);
        else
            fail("host: backing file holds %u of %ld devdax records", devdax, expect_devdax);
    }
    return failures != 0;
}

/* ---------------------------------------------------------------- main */

static uint32_t parse_nonce(const char *s)
{
    return (uint32_t)strtoul(s, NULL, 16);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc;
    if (!strcmp(cmd, "features") && argc == 2)
        rc = cmd_features();
    else if (!strcmp(cmd, "impl") && argc == 3)
        rc = cmd_impl(argv[2]);
    else if (!strcmp(cmd, "mapping") && argc == 5)
        rc = cmd_mapping(argv[2], strtoull(argv[3], NULL, 0), argv[4]);
    else if (!strcmp(cmd, "tiers") && argc == 3)
        rc = cmd_tiers(argv[2]);
    else if (!strcmp(cmd, "write-records") && argc == 4)
        rc = cmd_write_records(argv[2], parse_nonce(argv[3]));
    else if (!strcmp(cmd, "read-records") && argc == 5)
        rc = cmd_read_records(argv[2], parse_nonce(argv[3]), (unsigned)atoi(argv[4]));
    else if (!strcmp(cmd, "devdax") && (argc == 6 || argc == 7))
        rc = cmd_devdax(argv[2], argv[3], parse_nonce(argv[4]), (unsigned)atoi(argv[5]),
                        argc == 7 ? atol(argv[6]) : -1);
    else if (!strcmp(cmd, "scan-image") && argc == 6)
        rc = cmd_scan_image(argv[2], parse_nonce(argv[3]), strcmp(argv[4], "-") ? atol(argv[4]) : -1,
                            strcmp(argv[5], "-") ? atol(argv[5]) : -1);
    else {
        fprintf(stderr,
                "usage: %s features | impl WANT | mapping FILE SIZE GRAN | tiers FILE | write-records FILE NONCE |\n"
                "       read-records FILE NONCE N | devdax DEV GRAN NONCE SEQ [PREV] |\n"
                "       scan-image IMAGE NONCE N_FSDAX N_DEVDAX\n",
                argv[0]);
        return 2;
    }
    if (rc == 2) {
        fprintf(stderr, "%s: bad granularity (byte, cache_line or page)\n", argv[0]);
        return 2;
    }
    return failures ? 1 : 0;
}
