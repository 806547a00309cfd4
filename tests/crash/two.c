/*
 * Two files, for pmem-sys-crashtest's directory of images (see run.sh):
 * data.pmem gets a record, index.pmem the count that commits it.
 *
 *   two DIR VARIANT      write DIR/data.pmem, then DIR/index.pmem
 *   two --check DIR      exit 0 when the index counts only durable data
 */
#include <pmem.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int load(const char *dir, const char *name, uint64_t *w)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "check: no %s\n", path);
		return 0;
	}
	size_t n = fread(w, 8, 1, f);
	fclose(f);
	return n == 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check") == 0) {
		uint64_t data = 0, index = 0;
		if (!load(argv[2], "data.pmem", &data) || !load(argv[2], "index.pmem", &index))
			return 1;
		if (index == 1 && data != 42) {
			fprintf(stderr, "check: the index counts a record that is not there\n");
			return 1;
		}
		return 0;
	}
	if (argc != 3)
		return 2;
	char a[4096], b[4096];
	snprintf(a, sizeof(a), "%s/data.pmem", argv[1]);
	snprintf(b, sizeof(b), "%s/index.pmem", argv[1]);
	uint64_t *data = pmem_sys_map_file(a, 4096, PMEM_SYS_FILE_CREATE, 0644, NULL);
	uint64_t *index = pmem_sys_map_file(b, 4096, PMEM_SYS_FILE_CREATE, 0644, NULL);
	if (!data || !index)
		return 2;
	uint64_t v = 42, one = 1;
	memcpy_to_pmem(data, &v, 8);
	if (strcmp(argv[2], "correct") == 0)
		wmb_pmem();
	memcpy_to_pmem(index, &one, 8); /* GUILTY(no-fence) */
	wmb_pmem();
	return memunmap_pmem(data) | memunmap_pmem(index);
}
