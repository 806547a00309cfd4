/* The SIGBUS handler chain when the program links the library:
 * - with the default disposition, a fault outside the library still kills
 *   the process by SIGBUS (in a child);
 * - with a handler of the program's own (a plain, non-SA_SIGINFO handler
 *   that longjmps), faults inside the library stay the library's, and
 *   every fault outside it, and a raised SIGBUS, reach the program. */
#define _GNU_SOURCE
#include <errno.h>
#include <pmem.h>
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "victim.h"

static sigjmp_buf env;
static volatile sig_atomic_t plain_seen;

static void plain_handler(int sig)
{
	(void)sig;
	plain_seen++;
	siglongjmp(env, 1);
}

static void default_action_child(void)
{
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	/* The default disposition, even where a sanitizer installed one. */
	signal(SIGBUS, SIG_DFL);
	unsigned char *p = victim_map(pmem_sys_map_file, pmem_sys_errormsg);
	unsigned char dst[64];
	if (pmem_sys_copy_mc(dst, p + victim_end(), 64) != 64)
		_exit(3);
	printf("child: library fault recovered; now faulting outside it\n");
	fflush(stdout);
	volatile unsigned char *q = p + victim_end();
	unsigned char v = *q;
	printf("child: read %u from an unbacked page\n", v);
	_exit(0);
}

int main(void)
{
	size_t end = victim_end();

	pid_t pid = fork();
	if (pid == 0) {
		/* A child that keeps re-faulting dies by SIGALRM, and the
		 * check below fails instead of waiting forever. */
		alarm(CHILD_TIMEOUT);
		default_action_child();
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
	      "default action: child status %#x (expected death by SIGBUS%s)", status,
	      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "; it hung and was killed" : "");

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = plain_handler;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction");
	unsigned char *p = victim_map(pmem_sys_map_file, pmem_sys_errormsg);
	unsigned char dst[256];

	CHECK(current_sigbus_handler() == (uintptr_t)plain_handler, "no library handler before the first guarded call");
	errno = 0;
	CHECK(memcpy_from_pmem(dst, p + end - 128, 256) == -1 && errno == EIO, "library fault: errno %d", errno);
	CHECK(plain_seen == 0, "the program's handler saw a fault of the library");
	CHECK(current_sigbus_handler() != (uintptr_t)plain_handler, "the library installed its handler");

	/* Nothing but volatile objects changes between sigsetjmp and the
	 * jump (C11 7.13.2.1), so no CHECK inside. */
	static volatile int fell_through;
	if (sigsetjmp(env, 1) == 0) {
		volatile unsigned char *q = p + end + 5;
		(void)*q;
		fell_through = 1;
	}
	CHECK(!fell_through, "the load past the end did not fault");
	CHECK(plain_seen == 1, "the program's handler saw the fault outside the library (%d)", (int)plain_seen);

	if (sigsetjmp(env, 1) == 0) {
		raise(SIGBUS);
		fell_through = 1;
	}
	CHECK(!fell_through, "raise(SIGBUS) returned");
	CHECK(plain_seen == 2, "the program's handler saw raise(SIGBUS) (%d)", (int)plain_seen);

	/* Still guarded after the program's handler longjmp'd out twice. */
	CHECK(pmem_sys_copy_mc(dst, p + end - 128, 256) == 128, "library fault after foreign ones");
	CHECK(plain_seen == 2, "the program's handler saw a fault of the library");
	CHECK(memcpy_from_pmem(dst, p, 256) == 0 && dst[255] == pattern(255), "the kept pages read");
	CHECK_DONE("fault/chain");
}
