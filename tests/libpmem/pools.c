/*
 * tests/libpmem/pools.c - PMDK's higher libraries on a libpmem.so.1.
 *
 * Built against Debian's libpmemobj-dev, libpmemblk-dev and libpmemlog-dev;
 * run.sh runs each "write" on one libpmem.so.1 (PMDK's or the replacement)
 * and each "verify" on the other, with `pmempool check` in between.
 *
 *   pools obj-write POOL SEED   transactions on a pool made by
 *                               `pmempool create obj --layout=ct-pools`
 *   pools obj-verify POOL SEED
 *   pools blk-write POOL SEED   a pool made by `pmempool create blk 512`
 *   pools blk-verify POOL SEED
 *   pools log-write POOL SEED   a pool made by `pmempool create log`
 *   pools log-verify POOL SEED
 *
 * Exit 0 and a last line "ok ..." on success; exit 1 and "FAIL ..." otherwise.
 */
#define _GNU_SOURCE
#include <libpmemblk.h>
#include <libpmemlog.h>
#include <libpmemobj.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define LAYOUT "ct-pools"
#define NOBJ 16
#define MAGIC 0x43542d706f6f6c73ull /* "CT-pools" */

static unsigned long seed;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		printf("FAIL ");                                                                   \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		exit(1);                                                                           \
	} while (0)

static unsigned char pat(unsigned i, unsigned gen, size_t k)
{
	return (unsigned char)(seed * 31 + i * 7 + gen * 101 + k * 13);
}

/* ---------------------------------------------------------------- obj */

struct root {
	uint64_t magic;
	uint64_t gen;
	uint64_t n;
	PMEMoid objs[NOBJ];
	uint64_t sizes[NOBJ];
	PMEMoid atomic;
};

static size_t size1(unsigned i) { return 40 + (size_t)i * 389; }

/* What object I must hold after obj-write: the bytes and their number. */
static size_t expected(unsigned i, unsigned char *buf)
{
	size_t s1 = size1(i);
	if (i % 2 == 0) { /* reallocated to twice the size and rewritten */
		for (size_t k = 0; k < 2 * s1; k++)
			buf[k] = pat(i, 2, k);
		return 2 * s1;
	}
	for (size_t k = 0; k < s1; k++) /* middle quarter rewritten */
		buf[k] = (k >= s1 / 4 && k < s1 / 2) ? pat(i, 2, k) : pat(i, 1, k);
	return s1;
}

static int atomic_ctor(PMEMobjpool *pop, void *ptr, void *arg)
{
	size_t n = *(size_t *)arg;
	unsigned char buf[4096];
	for (size_t k = 0; k < n; k++)
		buf[k] = pat(99, 1, k);
	pmemobj_memcpy_persist(pop, ptr, buf, n);
	return 0;
}

static PMEMobjpool *obj_open(const char *path)
{
	PMEMobjpool *pop = pmemobj_open(path, LAYOUT);
	if (!pop)
		FAIL("pmemobj_open %s: %s", path, pmemobj_errormsg());
	return pop;
}

static void obj_verify_open(PMEMobjpool *pop)
{
	struct root *r = pmemobj_direct(pmemobj_root(pop, sizeof(struct root)));
	if (!r || r->magic != MAGIC || r->gen != 2 || r->n != NOBJ)
		FAIL("obj root: magic %#llx gen %llu n %llu", r ? (unsigned long long)r->magic : 0ull,
		     r ? (unsigned long long)r->gen : 0ull, r ? (unsigned long long)r->n : 0ull);
	static unsigned char want[16384];
	for (unsigned i = 0; i < NOBJ; i++) {
		size_t n = expected(i, want);
		const unsigned char *p = pmemobj_direct(r->objs[i]);
		if (!p)
			FAIL("obj %u: null", i);
		if (r->sizes[i] != n || pmemobj_alloc_usable_size(r->objs[i]) < n)
			FAIL("obj %u: size %llu usable %zu, want %zu", i,
			     (unsigned long long)r->sizes[i], pmemobj_alloc_usable_size(r->objs[i]), n);
		if (memcmp(p, want, n) != 0)
			FAIL("obj %u: contents differ", i);
		if (pmemobj_type_num(r->objs[i]) != 1)
			FAIL("obj %u: type %llu", i, (unsigned long long)pmemobj_type_num(r->objs[i]));
	}
	const unsigned char *a = pmemobj_direct(r->atomic);
	if (!a)
		FAIL("atomic object missing");
	for (size_t k = 0; k < 3000; k++)
		if (a[k] != pat(99, 1, k))
			FAIL("atomic object differs at %zu", k);
	unsigned count = 0;
	PMEMoid o;
	POBJ_FOREACH(pop, o) count++;
	if (count != NOBJ + 1)
		FAIL("%u objects in the pool, want %d (the aborted transaction's allocation must be "
		     "gone)",
		     count, NOBJ + 1);
}

static void obj_write(const char *path)
{
	PMEMobjpool *pop = obj_open(path);
	PMEMoid root = pmemobj_root(pop, sizeof(struct root));
	struct root *r = pmemobj_direct(root);
	if (!r)
		FAIL("pmemobj_root: %s", pmemobj_errormsg());
	if (r->magic != 0)
		FAIL("pool already written");
	static unsigned char buf[16384];

	/* 1: allocate and fill */
	TX_BEGIN(pop)
	{
		pmemobj_tx_add_range(root, 0, sizeof(struct root));
		for (unsigned i = 0; i < NOBJ; i++) {
			size_t n = size1(i);
			r->objs[i] = pmemobj_tx_alloc(n, 1);
			unsigned char *p = pmemobj_direct(r->objs[i]);
			for (size_t k = 0; k < n; k++)
				p[k] = pat(i, 1, k);
			r->sizes[i] = n;
		}
		r->magic = MAGIC;
		r->gen = 1;
		r->n = NOBJ;
	}
	TX_ONABORT { FAIL("transaction 1 aborted: %s", pmemobj_errormsg()); }
	TX_END

	/* 2: reallocate the even ones, rewrite part of the odd ones */
	TX_BEGIN(pop)
	{
		pmemobj_tx_add_range(root, 0, sizeof(struct root));
		for (unsigned i = 0; i < NOBJ; i++) {
			size_t s1 = size1(i);
			if (i % 2 == 0) {
				r->objs[i] = pmemobj_tx_realloc(r->objs[i], 2 * s1, 1);
				for (size_t k = 0; k < 2 * s1; k++)
					buf[k] = pat(i, 2, k);
				/* a new allocation needs no snapshot; flags reach pmem_memcpy */
				pmemobj_memcpy(pop, pmemobj_direct(r->objs[i]), buf, 2 * s1,
					       i % 4 ? PMEMOBJ_F_MEM_NONTEMPORAL
						     : PMEMOBJ_F_MEM_WC | PMEMOBJ_F_MEM_NODRAIN);
				r->sizes[i] = 2 * s1;
			} else {
				unsigned char *p = pmemobj_direct(r->objs[i]);
				pmemobj_tx_add_range_direct(p + s1 / 4, s1 / 4 + 1);
				for (size_t k = s1 / 4; k < s1 / 2; k++)
					p[k] = pat(i, 2, k);
			}
		}
		r->gen = 2;
	}
	TX_ONABORT { FAIL("transaction 2 aborted: %s", pmemobj_errormsg()); }
	TX_END

	/* 3: scribble, free, allocate, then abort: nothing of it may remain */
	volatile int aborted = 0;
	TX_BEGIN(pop)
	{
		unsigned char *p = pmemobj_direct(r->objs[0]);
		pmemobj_tx_add_range_direct(p, 64);
		memset(p, 0xee, 64);
		pmemobj_tx_add_range(root, 0, sizeof(struct root));
		pmemobj_tx_free(r->objs[1]);
		r->objs[1] = pmemobj_tx_zalloc(100, 1);
		r->gen = 3;
		pmemobj_tx_abort(ECANCELED);
	}
	TX_ONABORT { aborted = 1; }
	TX_END
	if (!aborted)
		FAIL("transaction 3 did not abort");

	/* an atomic allocation whose constructor persists with flags */
	size_t an = 3000;
	if (pmemobj_alloc(pop, &r->atomic, an, 2, atomic_ctor, &an) != 0)
		FAIL("pmemobj_alloc: %s", pmemobj_errormsg());

	obj_verify_open(pop);
	pmemobj_close(pop);
	printf("ok obj-write: %d objects in 2 transactions, 1 aborted, 1 atomic\n", NOBJ);
}

static void obj_verify(const char *path)
{
	PMEMobjpool *pop = obj_open(path);
	obj_verify_open(pop);
	pmemobj_close(pop);
	printf("ok obj-verify: %d objects and the atomic one as written\n", NOBJ);
}

/* ---------------------------------------------------------------- blk */

#define BSIZE 512

static void blk_expect(long long b, unsigned char *buf)
{
	for (size_t k = 0; k < BSIZE; k++)
		buf[k] = pat((unsigned)b, 3, k);
}

static PMEMblkpool *blk_open(const char *path, long long *nblock)
{
	PMEMblkpool *pbp = pmemblk_open(path, BSIZE);
	if (!pbp)
		FAIL("pmemblk_open %s: %s", path, pmemblk_errormsg());
	*nblock = (long long)pmemblk_nblock(pbp);
	if (*nblock < 16)
		FAIL("pmemblk_nblock %lld", *nblock);
	return pbp;
}

static void blk_check(PMEMblkpool *pbp, long long nb)
{
	unsigned char got[BSIZE], want[BSIZE], zero[BSIZE] = {0};
	const long long written[] = {0, 3, 7, 10, nb - 1};
	for (size_t i = 0; i < sizeof(written) / sizeof(written[0]); i++) {
		if (pmemblk_read(pbp, got, written[i]) != 0)
			FAIL("pmemblk_read %lld: %s", written[i], pmemblk_errormsg());
		blk_expect(written[i], want);
		if (memcmp(got, want, BSIZE) != 0)
			FAIL("block %lld differs", written[i]);
	}
	const long long zeroed[] = {1, 4, nb - 2};
	for (size_t i = 0; i < sizeof(zeroed) / sizeof(zeroed[0]); i++) {
		if (pmemblk_read(pbp, got, zeroed[i]) != 0 || memcmp(got, zero, BSIZE) != 0)
			FAIL("block %lld is not zero", zeroed[i]);
	}
	errno = 0;
	if (pmemblk_read(pbp, got, 2) != -1 || errno != EIO)
		FAIL("block 2 (set_error) read: errno %d, want EIO", errno);
}

static void blk_write(const char *path)
{
	long long nb;
	PMEMblkpool *pbp = blk_open(path, &nb);
	unsigned char buf[BSIZE];
	const long long blocks[] = {0, 1, 2, 3, 7, 10, nb - 1};
	for (int round = 0; round < 2; round++) /* the second round rewrites in place */
		for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
			blk_expect(blocks[i], buf);
			if (round == 0)
				buf[0] ^= 0xff;
			if (pmemblk_write(pbp, buf, blocks[i]) != 0)
				FAIL("pmemblk_write %lld: %s", blocks[i], pmemblk_errormsg());
		}
	if (pmemblk_set_zero(pbp, 1) != 0)
		FAIL("pmemblk_set_zero: %s", pmemblk_errormsg());
	if (pmemblk_set_error(pbp, 2) != 0)
		FAIL("pmemblk_set_error: %s", pmemblk_errormsg());
	blk_check(pbp, nb);
	pmemblk_close(pbp);
	printf("ok blk-write: %lld blocks of %d, 7 written twice, 1 zeroed, 1 in error\n", nb, BSIZE);
}

static void blk_verify(const char *path)
{
	long long nb;
	PMEMblkpool *pbp = blk_open(path, &nb);
	blk_check(pbp, nb);
	pmemblk_close(pbp);
	printf("ok blk-verify: %lld blocks as written\n", nb);
}

/* ---------------------------------------------------------------- log */

static const size_t log_sizes[] = {1, 100, 4096, 5000, 64};
#define LOG_TOTAL (1 + 100 + 4096 + 5000 + 64 + 10 + 20 + 30)

static void log_expect(unsigned char *buf)
{
	for (size_t k = 0; k < LOG_TOTAL; k++)
		buf[k] = pat(5, 5, k);
}

struct walk {
	unsigned char *buf;
	size_t len;
};

static int walk_cb(const void *data, size_t len, void *arg)
{
	struct walk *w = arg;
	if (w->len + len > 2 * LOG_TOTAL)
		return 0;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 1;
}

static void log_check(PMEMlogpool *plp)
{
	static unsigned char want[LOG_TOTAL], got[2 * LOG_TOTAL];
	log_expect(want);
	long long t = pmemlog_tell(plp);
	if (t != LOG_TOTAL)
		FAIL("pmemlog_tell %lld, want %d", t, LOG_TOTAL);
	struct walk w = {got, 0};
	pmemlog_walk(plp, 0, walk_cb, &w);
	if (w.len != LOG_TOTAL || memcmp(got, want, LOG_TOTAL) != 0)
		FAIL("log contents differ (%zu bytes walked)", w.len);
}

static PMEMlogpool *log_open(const char *path)
{
	PMEMlogpool *plp = pmemlog_open(path);
	if (!plp)
		FAIL("pmemlog_open %s: %s", path, pmemlog_errormsg());
	return plp;
}

static void log_write(const char *path)
{
	PMEMlogpool *plp = log_open(path);
	static unsigned char all[LOG_TOTAL];
	log_expect(all);
	/* something to throw away first */
	if (pmemlog_append(plp, "discarded", 9) != 0)
		FAIL("pmemlog_append: %s", pmemlog_errormsg());
	pmemlog_rewind(plp);
	size_t off = 0;
	for (size_t i = 0; i < sizeof(log_sizes) / sizeof(log_sizes[0]); i++) {
		if (pmemlog_append(plp, all + off, log_sizes[i]) != 0)
			FAIL("pmemlog_append %zu: %s", log_sizes[i], pmemlog_errormsg());
		off += log_sizes[i];
	}
	struct iovec iov[3] = {{all + off, 10}, {all + off + 10, 20}, {all + off + 30, 30}};
	if (pmemlog_appendv(plp, iov, 3) != 0)
		FAIL("pmemlog_appendv: %s", pmemlog_errormsg());
	log_check(plp);
	pmemlog_close(plp);
	printf("ok log-write: %d bytes in 6 appends after a rewind\n", LOG_TOTAL);
}

static void log_verify(const char *path)
{
	PMEMlogpool *plp = log_open(path);
	log_check(plp);
	pmemlog_close(plp);
	printf("ok log-verify: %d bytes as written\n", LOG_TOTAL);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: pools obj|blk|log-write|verify POOL SEED\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = strtoul(argv[3], NULL, 10);
	const char *cmd = argv[1], *path = argv[2];
	if (!strcmp(cmd, "obj-write"))
		obj_write(path);
	else if (!strcmp(cmd, "obj-verify"))
		obj_verify(path);
	else if (!strcmp(cmd, "blk-write"))
		blk_write(path);
	else if (!strcmp(cmd, "blk-verify"))
		blk_verify(path);
	else if (!strcmp(cmd, "log-write"))
		log_write(path);
	else if (!strcmp(cmd, "log-verify"))
		log_verify(path);
	else {
		fprintf(stderr, "pools: unknown command %s\n", cmd);
		return 2;
	}
	return 0;
}
