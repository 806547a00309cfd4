/*
 * A libpmemobj program (PMDK's transactional object store) for
 * pmem-sys-crashtest, run on pmem-sys's libpmem.so.1 (see run.sh).
 *
 *   obj create FILE          create the pool: two accounts holding TOTAL
 *   obj VARIANT FILE N       N transfers between the accounts
 *   obj --check FILE         exit 0 when the accounts still hold TOTAL
 *
 * The root holds two account objects and a transfer counter. The correct
 * variant moves money in a transaction that updates both objects and the
 * root; the broken one updates the objects outside any transaction,
 * persisting the credit before the debit: a crash between the two leaves
 * money created from nothing. The check opens the pool (which rolls back
 * an interrupted transaction) and verifies the invariant; run.sh runs
 * `pmempool check` on each image first.
 */
#include <libpmemobj.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYOUT "pmem-sys-crashtest"
#define TOTAL 1000

POBJ_LAYOUT_BEGIN(crash);
POBJ_LAYOUT_ROOT(crash, struct root);
POBJ_LAYOUT_TOID(crash, struct account);
POBJ_LAYOUT_END(crash);

struct account {
	uint64_t balance;
	uint64_t updates;
};

struct root {
	TOID(struct account) a;
	TOID(struct account) b;
	uint64_t transfers;
};

static void transfer_tx(PMEMobjpool *pop, TOID(struct root) root, uint64_t x)
{
	TX_BEGIN(pop) {
		TOID(struct account) a = D_RO(root)->a;
		TOID(struct account) b = D_RO(root)->b;
		TX_ADD(a);
		TX_ADD(b);
		TX_ADD_FIELD(root, transfers);
		D_RW(a)->balance -= x;
		D_RW(a)->updates++;
		D_RW(b)->balance += x;
		D_RW(b)->updates++;
		D_RW(root)->transfers++;
	} TX_ONABORT {
		fprintf(stderr, "obj: transaction aborted\n");
		exit(2);
	} TX_END
}

/* Broken: no transaction; the credit is made durable before the debit. */
static void transfer_unsafe(PMEMobjpool *pop, TOID(struct root) root, uint64_t x)
{
	TOID(struct account) ta = D_RO(root)->a, tb = D_RO(root)->b;
	struct account *a = D_RW(ta), *b = D_RW(tb);
	b->balance += x;
	pmemobj_persist(pop, &b->balance, sizeof(b->balance)); /* GUILTY(unsafe) */
	a->balance -= x;
	pmemobj_persist(pop, &a->balance, sizeof(a->balance));
}

static int check(const char *path)
{
	PMEMobjpool *pop = pmemobj_open(path, LAYOUT);
	if (!pop) {
		fprintf(stderr, "check: pmemobj_open: %s\n", pmemobj_errormsg());
		return 1;
	}
	TOID(struct root) root = POBJ_ROOT(pop, struct root);
	int bad = 0;
	if (TOID_IS_NULL(D_RO(root)->a)) {
		/* Created but not initialized: nothing to check. */
	} else {
		uint64_t sum = D_RO(D_RO(root)->a)->balance + D_RO(D_RO(root)->b)->balance;
		if (sum != TOTAL) {
			fprintf(stderr, "check: the accounts hold %llu, not %d\n",
				(unsigned long long)sum, TOTAL);
			bad = 1;
		}
	}
	pmemobj_close(pop);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(argv[2]);
	if (argc == 3 && strcmp(argv[1], "create") == 0) {
		PMEMobjpool *pop = pmemobj_create(argv[2], LAYOUT, PMEMOBJ_MIN_POOL, 0644);
		if (!pop) {
			fprintf(stderr, "obj: pmemobj_create: %s\n", pmemobj_errormsg());
			return 2;
		}
		TOID(struct root) root = POBJ_ROOT(pop, struct root);
		TX_BEGIN(pop) {
			TX_ADD(root);
			D_RW(root)->a = TX_ZNEW(struct account);
			D_RW(root)->b = TX_ZNEW(struct account);
			D_RW(D_RW(root)->a)->balance = TOTAL;
		} TX_END
		pmemobj_close(pop);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: %s create FILE | tx|unsafe FILE N | --check FILE\n", argv[0]);
		return 2;
	}
	void (*transfer)(PMEMobjpool *, TOID(struct root), uint64_t) = NULL;
	if (strcmp(argv[1], "tx") == 0)
		transfer = transfer_tx;
	else if (strcmp(argv[1], "unsafe") == 0)
		transfer = transfer_unsafe;
	if (!transfer) {
		fprintf(stderr, "obj: unknown variant %s\n", argv[1]);
		return 2;
	}
	PMEMobjpool *pop = pmemobj_open(argv[2], LAYOUT);
	if (!pop) {
		fprintf(stderr, "obj: pmemobj_open: %s\n", pmemobj_errormsg());
		return 2;
	}
	TOID(struct root) root = POBJ_ROOT(pop, struct root);
	long n = atol(argv[3]);
	for (long i = 0; i < n; i++)
		transfer(pop, root, (uint64_t)(10 + i));
	pmemobj_close(pop);
	return 0;
}
