/* The library loaded with dlopen after the program installed its own
 * SIGBUS handler: the handler chain survives. The program is not linked
 * with libpmem_sys; argv[1] is the library's path. After dlclose the
 * library stays loaded (it pins itself once its handler is installed), so
 * a later fault still reaches the program's handler through the chain. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/wait.h>

#include "victim.h"

/* ISO C has no conversion from void * to a function pointer; copy the
 * bits, as POSIX allows for dlsym results. */
#define LOAD(var, name)                                   \
	do {                                              \
		void *sym_ = dlsym(lib, name);            \
		memcpy(&(var), &sym_, sizeof(var));       \
	} while (0)

static int dlclose_child(const char *path)
{
	unsigned char *p = victim_plain(), buf[64];
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	size_t (*copy_mc)(void *, const void *, size_t);
	if (!p || !lib)
		return 2;
	LOAD(copy_mc, "pmem_sys_copy_mc");
	if (copy_mc(buf, p + victim_end(), 64) != 64)
		return 3;
	dlclose(lib);
	if (!dlopen(path, RTLD_NOW | RTLD_NOLOAD)) {
		fprintf(stderr, "dlclose child: the library was unloaded with its handler installed\n");
		return 4;
	}
	int before = atomic_load(&own_seen);
	volatile unsigned char *q = p + victim_end() + 1;
	if (*q != 0 || atomic_load(&own_seen) != before + 1)
		return 5;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/libpmem_sys.so.0\n", argv[0]);
		return 2;
	}
	install_own_handler();
	/* First, in a child that has not loaded the library and never makes
	 * it record an error (error messages are thread-locals with
	 * destructors, which alone keep glibc from unloading it): dlclose
	 * must not unload the library once its handler is installed, and the
	 * chain must still run. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(CHILD_TIMEOUT);	/* a hung child dies by SIGALRM: a failure, not a hang */
		_exit(dlclose_child(argv[1]));
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dlclose child: status %#x%s", status,
	      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (hung and killed)" : "");

	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 2;
	}
	map_file_fn map_file;
	const char *(*errormsg)(void);
	int (*from_pmem)(void *, const void *, size_t);
	size_t (*copy_mc)(void *, const void *, size_t);
	int (*to_pmem_checked)(void *, const void *, size_t);
	LOAD(map_file, "pmem_sys_map_file");
	LOAD(errormsg, "pmem_sys_errormsg");
	LOAD(from_pmem, "memcpy_from_pmem");
	LOAD(copy_mc, "pmem_sys_copy_mc");
	LOAD(to_pmem_checked, "pmem_sys_memcpy_to_pmem_checked");
	if (!map_file || !errormsg || !from_pmem || !copy_mc || !to_pmem_checked) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 2;
	}
	CHECK(current_sigbus_handler() == (uintptr_t)own_handler, "loading the library changed nothing yet");

	size_t end = victim_end();
	unsigned char *p = victim_map(map_file, errormsg);
	unsigned char buf[256];
	errno = 0;
	CHECK(from_pmem(buf, p + end - 100, 256) == -1 && errno == EIO, "library fault: errno %d", errno);
	CHECK(copy_mc(buf, p + end - 100, 256) == 156, "copy_mc count");
	CHECK(to_pmem_checked(p + end - 100, buf, 256) == -1 && errno == EIO, "checked write: errno %d", errno);
	CHECK(strstr(errormsg(), "dst+100 (") != NULL, "message: %s", errormsg());
	CHECK(atomic_load(&own_seen) == 0, "the program's handler saw a fault of the library");
	CHECK(current_sigbus_handler() != (uintptr_t)own_handler, "the library installed its handler");

	volatile unsigned char *q = p + end + 17;
	CHECK(*q == 0, "the program's handler mapped a fresh page");
	CHECK(atomic_load(&own_seen) == 1 && atomic_load(&own_addr) == (uintptr_t)q && atomic_load(&own_code) == BUS_ADRERR,
	      "the program's handler saw the fault outside the library with its siginfo");

	CHECK(dlclose(lib) == 0, "dlclose: %s", dlerror());

	CHECK_DONE("fault/dlopen");
}
