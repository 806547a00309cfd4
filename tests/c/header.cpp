// The generated header compiles as C++ (extern "C" guard, no C-only syntax)
// and its declarations link against the library from C++.
#include <pmem.h>

#include <cstdio>
#include <cstring>

int main()
{
	static unsigned char buf[256];
	memcpy_to_pmem(buf, "c++", 4);
	wmb_pmem();
	bool ok = std::strcmp(reinterpret_cast<const char *>(buf), "c++") == 0 && arch_has_pmem_api();
	std::printf("header.cpp: %s (%s)\n", ok ? "all checks passed" : "FAILED", pmem_sys_impl());
	return ok ? 0 : 1;
}
