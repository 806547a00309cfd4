/* Correct use of __pmem: sparse must stay silent. */
#include <pmem.h>

#include <string.h>

int copy_in(void __pmem *dst, const char *msg);

int copy_in(void __pmem *dst, const char *msg)
{
	char back[16];
	memcpy_to_pmem(dst, msg, strlen(msg) + 1);
	wmb_pmem();
	return memcpy_from_pmem(back, dst, sizeof back);
}
