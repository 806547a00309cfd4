/*
 * A two-slot atomic update (copy-on-write with a valid flag), correct and
 * broken, for pmem-sys-crashtest (see run.sh).
 *
 *   cow FILE VARIANT N   create FILE and make N updates
 *   cow --check FILE     exit 0 when FILE holds one whole version
 *
 * Layout: line 0 holds the index of the valid slot and its generation;
 * slots 0 and 1 are two lines each (lines 1-2 and 3-4). An update writes
 * the whole new version into the slot that is not valid, makes it
 * durable, and only then flips the flag: a crash leaves the old version or
 * the new one, never a mix.
 */
#include <pmem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE 64
#define WORDS (2 * LINE / 8)
#define FILE_SIZE 4096

struct flag {
	uint64_t valid; /* 0 or 1 */
	uint64_t gen;   /* generation of the valid slot */
	uint8_t pad[LINE - 16];
};

struct slot {
	uint64_t w[WORDS]; /* every word holds the generation */
};

static struct flag *flag;
static struct slot *slots;

static void fill(struct slot *s, uint64_t gen)
{
	for (int i = 0; i < WORDS; i++)
		s->w[i] = gen;
}

/* Correct: new version into the other slot, fence, then the flag. */
static void update_correct(uint64_t gen)
{
	struct slot s;
	fill(&s, gen);
	uint64_t other = flag->valid ^ 1;
	memcpy_to_pmem(&slots[other], &s, sizeof(s));
	wmb_pmem();
	struct flag f = {.valid = other, .gen = gen};
	memcpy_to_pmem(flag, &f, 16);
	wmb_pmem();
}

/* Broken: the flag is flipped before the new slot is fenced. */
static void update_flag_early(uint64_t gen)
{
	struct slot s;
	fill(&s, gen);
	uint64_t other = flag->valid ^ 1;
	memcpy_to_pmem(&slots[other], &s, sizeof(s));
	struct flag f = {.valid = other, .gen = gen};
	memcpy_to_pmem(flag, &f, 16); /* GUILTY(flag-early) */
	wmb_pmem();
}

/* Broken: updates the valid slot in place (no copy-on-write): a crash can
 * leave one line of the slot new and the other old. */
static void update_in_place(uint64_t gen)
{
	struct slot s;
	fill(&s, gen);
	uint64_t v = flag->valid;
	memcpy_to_pmem(&slots[v], &s, sizeof(s)); /* GUILTY(in-place) */
	wmb_pmem();
	struct flag f = {.valid = v, .gen = gen};
	memcpy_to_pmem(flag, &f, 16);
	wmb_pmem();
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
	if (n != sizeof(buf))
		return 1;
	struct flag fl;
	memcpy(&fl, buf, sizeof(fl));
	if (fl.valid > 1) {
		fprintf(stderr, "check: valid flag %llu\n", (unsigned long long)fl.valid);
		return 1;
	}
	struct slot s;
	memcpy(&s, buf + LINE + fl.valid * sizeof(struct slot), sizeof(s));
	for (int i = 0; i < WORDS; i++) {
		if (s.w[i] != fl.gen) {
			fprintf(stderr, "check: slot %llu word %d holds %llu, the flag says generation %llu\n",
				(unsigned long long)fl.valid, i, (unsigned long long)s.w[i],
				(unsigned long long)fl.gen);
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
	void (*update)(uint64_t) = NULL;
	if (strcmp(argv[2], "correct") == 0)
		update = update_correct;
	else if (strcmp(argv[2], "flag-early") == 0)
		update = update_flag_early;
	else if (strcmp(argv[2], "in-place") == 0)
		update = update_in_place;
	long n = atol(argv[3]);
	if (!update || n < 0) {
		fprintf(stderr, "cow: unknown variant %s or bad count %s\n", argv[2], argv[3]);
		return 2;
	}
	unlink(argv[1]);
	size_t len = 0;
	void *base = pmem_sys_map_file(argv[1], FILE_SIZE, PMEM_SYS_FILE_CREATE, 0644, &len);
	if (!base) {
		fprintf(stderr, "cow: %s\n", pmem_sys_errormsg());
		return 2;
	}
	flag = base;
	slots = (struct slot *)((char *)base + LINE);
	/* A fresh file is all zeros: slot 0 valid at generation 0, which the
	 * zeroed slot matches. */
	for (long g = 1; g <= n; g++)
		update((uint64_t)g);
	if (memunmap_pmem(base) != 0) {
		fprintf(stderr, "cow: %s\n", pmem_sys_errormsg());
		return 2;
	}
	return 0;
}
