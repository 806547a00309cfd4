/*
 * tests/libpmem/guest-lsa.c - runs in the label-area VM of
 * `make test-libpmem-qemu`: writes MARKER at offset 4096 of nmem0's label
 * storage area with ND_IOCTL_SET_CONFIG_DATA.  QEMU serves the write in
 * nvdimm_write_label_data, which copies with pmem_memcpy_persist when the
 * memory backend has pmem=on: the one libpmem call of QEMU 7.2 that a guest
 * can cause.  The host then looks for MARKER in the backing file.
 */
#include <fcntl.h>
#include <linux/ndctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: guest-lsa MARKER\n");
		return 2;
	}
	size_t n = strlen(argv[1]);
	int fd = open("/dev/nmem0", O_RDWR);
	if (fd < 0) {
		printf("FAIL lsa: open /dev/nmem0: %m\n");
		return 1;
	}
	struct nd_cmd_set_config_hdr *h = calloc(1, sizeof(*h) + n + sizeof(unsigned));
	if (!h)
		return 1;
	h->in_offset = 4096;
	h->in_length = (unsigned)n;
	memcpy(h->in_buf, argv[1], n);
	if (ioctl(fd, ND_IOCTL_SET_CONFIG_DATA, h) != 0) {
		printf("FAIL lsa: ND_IOCTL_SET_CONFIG_DATA: %m\n");
		return 1;
	}
	unsigned status;
	memcpy(&status, h->in_buf + n, sizeof(status));
	if (status != 0) {
		printf("FAIL lsa: ND_IOCTL_SET_CONFIG_DATA status %u\n", status);
		return 1;
	}
	printf("LSA-WRITTEN %zu bytes at 4096\n", n);
	return 0;
}
