/* Two deliberate __pmem mistakes sparse must report. */
#include <pmem.h>

int wrong(void __pmem *pm, char *plain);

int wrong(void __pmem *pm, char *plain)
{
	memcpy_to_pmem(plain, "x", 1);       /* a plain pointer passed as __pmem */
	return *(char __pmem *)pm;           /* a dereference of a __pmem pointer */
}
