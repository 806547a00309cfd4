/*
 * An append-only log on persistent memory, correct and with planted bugs,
 * for pmem-sys-crashtest (see run.sh).
 *
 *   log FILE VARIANT N   create FILE and append N records
 *   log --check FILE     exit 0 when FILE is a consistent log
 *
 * Layout: line 0 holds the magic and the tail (the number of committed
 * records); record i fills line 1 + i. A record is committed once the tail
 * counts it, so it must be durable before the tail that counts it is.
 *
 * Each planted bug has one line marked GUILTY(variant): the call
 * pmem-sys-crashtest must name in its report. run.sh finds the line
 * numbers by those markers.
 */
#include <pmem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC 0x676f6c2d6d656d70ull /* "pmem-log" */
#define LINE 64
#define MAX_RECORDS 60
#define FILE_SIZE 4096

struct header {
	uint64_t magic;
	uint64_t tail;
	uint8_t pad[LINE - 16];
};

struct record {
	uint64_t seq;
	uint64_t value;
	uint8_t payload[LINE - 24];
	uint64_t check;
};

_Static_assert(sizeof(struct record) == LINE, "a record is one line");

static uint64_t checksum(const struct record *r)
{
	uint64_t h = 1469598103934665603ull;
	const uint8_t *p = (const uint8_t *)r;
	for (size_t i = 0; i < offsetof(struct record, check); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void make_record(struct record *r, uint64_t i)
{
	memset(r, 0, sizeof(*r));
	r->seq = i;
	r->value = i * 7 + 1;
	memset(r->payload, (int)(0x40 + i), sizeof(r->payload));
	r->check = checksum(r);
}

static struct header *hdr;
static struct record *recs;

/* The correct append: the record, a fence, then the tail, a fence. */
static void append_correct(uint64_t i)
{
	struct record r;
	make_record(&r, i);
	memcpy_to_pmem(&recs[i], &r, sizeof(r));
	wmb_pmem();
	uint64_t t = i + 1;
	memcpy_to_pmem(&hdr->tail, &t, sizeof(t));
	wmb_pmem();
}

/* Bug: the tail is made durable before the record is written. */
static void append_tail_first(uint64_t i)
{
	struct record r;
	make_record(&r, i);
	uint64_t t = i + 1;
	memcpy_to_pmem(&hdr->tail, &t, sizeof(t)); /* GUILTY(tail-first) */
	wmb_pmem();
	memcpy_to_pmem(&recs[i], &r, sizeof(r));
	wmb_pmem();
}

/* Bug: the record's write-back is omitted. With the flags API the record
 * is copied with NOFLUSH (ordinary stores left in the cache); without it,
 * stored through a pointer where arch_wb_cache_pmem() should follow. The
 * fence that follows completes nothing for it. */
static void append_no_flush(uint64_t i)
{
	struct record r;
	make_record(&r, i);
#ifdef PMEM_SYS_F_NOFLUSH
	pmem_sys_memcpy_flags(&recs[i], &r, sizeof(r), PMEM_SYS_F_NOFLUSH); /* GUILTY(no-flush) */
	wmb_pmem();
#else
	memcpy(&recs[i], &r, sizeof(r));
	wmb_pmem(); /* GUILTY(no-flush) */
#endif
	uint64_t t = i + 1;
	memcpy_to_pmem(&hdr->tail, &t, sizeof(t));
	wmb_pmem();
}

/* Bug: no fence between the record and the tail. */
static void append_no_fence(uint64_t i)
{
	struct record r;
	make_record(&r, i);
	memcpy_to_pmem(&recs[i], &r, sizeof(r));
	uint64_t t = i + 1;
	memcpy_to_pmem(&hdr->tail, &t, sizeof(t)); /* GUILTY(no-fence) */
	wmb_pmem();
}

/* Bug: the record is written through a plain pointer and never written
 * back; only the tail is persisted. The store is found by the recorder's
 * shadow and attributed to the next call, the persist of the tail. */
static void append_direct_store(uint64_t i)
{
	make_record(&recs[i], i);
	hdr->tail = i + 1;
	pmem_sys_persist(&hdr->tail, sizeof(hdr->tail)); /* GUILTY(direct-store) */
}

/* Correct with plain pointer stores: each written back and fenced
 * (pmem_sys_persist) before the tail is stored. */
static void append_direct_correct(uint64_t i)
{
	make_record(&recs[i], i);
	pmem_sys_persist(&recs[i], sizeof(recs[i]));
	hdr->tail = i + 1;
	pmem_sys_persist(&hdr->tail, sizeof(hdr->tail));
}

static int check(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "check: %s: %s\n", path, strerror(errno));
		return 2;
	}
	static unsigned char buf[FILE_SIZE];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n != sizeof(buf)) {
		fprintf(stderr, "check: %s: %zu bytes, want %d\n", path, n, FILE_SIZE);
		return 1;
	}
	struct header h;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MAGIC) {
		/* Not yet initialized: must be empty. */
		if (h.tail != 0) {
			fprintf(stderr, "check: no magic but tail %llu\n", (unsigned long long)h.tail);
			return 1;
		}
		return 0;
	}
	if (h.tail > MAX_RECORDS) {
		fprintf(stderr, "check: tail %llu out of range\n", (unsigned long long)h.tail);
		return 1;
	}
	for (uint64_t i = 0; i < h.tail; i++) {
		struct record r;
		memcpy(&r, buf + LINE * (1 + i), sizeof(r));
		if (r.seq != i || r.check != checksum(&r)) {
			fprintf(stderr, "check: tail %llu but record %llu is not valid (seq %llu)\n",
				(unsigned long long)h.tail, (unsigned long long)i,
				(unsigned long long)r.seq);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(argv[2]);
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE VARIANT N | --check FILE\n", argv[0]);
		return 2;
	}
	static const struct {
		const char *name;
		void (*append)(uint64_t);
	} variants[] = {
		{"correct", append_correct},
		{"direct-correct", append_direct_correct},
		{"tail-first", append_tail_first},
		{"no-flush", append_no_flush},
		{"no-fence", append_no_fence},
		{"direct-store", append_direct_store},
	};
	void (*append)(uint64_t) = NULL;
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++)
		if (strcmp(argv[2], variants[v].name) == 0)
			append = variants[v].append;
	long n = atol(argv[3]);
	if (!append || n < 0 || n > MAX_RECORDS) {
		fprintf(stderr, "log: unknown variant %s or bad count %s\n", argv[2], argv[3]);
		return 2;
	}
	unlink(argv[1]);
	size_t len = 0;
	void *base = pmem_sys_map_file(argv[1], FILE_SIZE, PMEM_SYS_FILE_CREATE, 0644, &len);
	if (!base) {
		fprintf(stderr, "log: %s\n", pmem_sys_errormsg());
		return 2;
	}
	hdr = base;
	recs = (struct record *)((char *)base + LINE);
	uint64_t magic = MAGIC;
	memcpy_to_pmem(&hdr->magic, &magic, sizeof(magic));
	wmb_pmem();
	for (long i = 0; i < n; i++)
		append((uint64_t)i);
	if (memunmap_pmem(base) != 0) {
		fprintf(stderr, "log: %s\n", pmem_sys_errormsg());
		return 2;
	}
	return 0;
}
