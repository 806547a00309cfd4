# pmem-sys: build, install, demo and test.
#
#   make demo      build the library and run the C examples on a temporary file
#   make test      everything testable on this machine (SKIPPED lines name the rest)
#   make install   PREFIX=/usr/local DESTDIR=  (libraries stripped, debug info in .debug/,
#                  header, pkg-config file, man pages, licences)
#   make wheel     the Python package: manylinux2014 abi3 wheel and sdist in build/dist
#   make man       the man pages, generated from include/pmem.h, in build/man
#   make deps      install what make test needs (as root; make test does it first)
#   make bench     this library against PMDK's libpmem, side by side
#   make test-dax  the library inside a QEMU VM with an emulated NVDIMM

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/pmem-sys
DESTDIR ?=
CARGO   ?= cargo
CC      ?= gcc

VERSION  := 0.1.0
SOMAJOR  := 0
SONAME   := libpmem_sys.so.$(SOMAJOR)
# Cargo's output directory follows CARGO_TARGET_DIR when it is set.
RELEASE  := $(or $(CARGO_TARGET_DIR),target)/release
BUILD    ?= build
STAGE    := $(abspath $(BUILD)/stage)
# What a static link needs besides libpmem_sys.a (rustc --print native-static-libs).
LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
comma    := ,
CWARN    := -std=c11 -Wall -Wextra -Werror -pedantic
FUZZ_SECONDS ?= 60

export PKG_CONFIG_PATH := $(STAGE)/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: all lib libpmem test-libpmem-symbols test-libpmem-unit header check-header install uninstall stage demo examples test \
        test-rust test-c test-crash crashtest test-examples test-symbols test-python test-bindings test-verify test-docs \
        bench bench-smoke fuzz test-dax clean deps man wheel test-man test-install test-doc

all: lib libpmem crashtest

# The C library. The SONAME is passed here, not from a build script, so it
# never leaks into crates that depend on pmem-sys (see the crate docs).
lib:
	$(CARGO) rustc -p pmem-sys --release --features capi --crate-type cdylib,staticlib \
	    -- -C link-arg=-Wl,-soname,$(SONAME)

# libpmem.so.1: PMDK 1.12's libpmem ABI on this engine (pmdk-compat/).
# rustc links a cdylib with a version script of its own, and a second
# --version-script conflicts with it (GNU ld refuses, rust-lld keeps
# rustc's), while PMDK's consumers need every name versioned LIBPMEM_1.0.
# So the crate is a staticlib and cc links it with our script alone; -u keeps
# each of the 23 exports, --gc-sections drops what they do not reach, and
# -z now matches PMDK's BIND_NOW. See pmdk-compat/src/lib.rs.
LIBPMEM_SYMS := $(shell cat tests/libpmem-symbols.txt)
libpmem:
	$(CARGO) build -p pmdk-compat --release
	$(CC) -shared -o $(RELEASE)/libpmem.so.1 -Wl,-soname,libpmem.so.1 \
	    -Wl,--version-script=pmdk-compat/libpmem.map -Wl,-z,now -Wl,--gc-sections \
	    $(addprefix -Wl$(comma)-u$(comma),$(LIBPMEM_SYMS)) \
	    $(RELEASE)/libpmdk_compat.a $(LIBS_PRIVATE)

# Regenerate include/pmem.h from src/capi/mod.rs (cbindgen, pinned).
header:
	PMEM_SYS_BLESS=1 $(CARGO) test -p pmem-sys --features capi --test header

# Fails when the committed header differs from a fresh generation.
check-header:
	$(CARGO) test -p pmem-sys --features capi --test header

$(BUILD)/pmem-sys.pc: pmem-sys/pmem-sys.pc.in
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|' $< > $@

# Strips an installed shared library and keeps its debug information in
# .debug/NAME.debug beside it, where gdb and other debuggers look for the
# file its .gnu_debuglink names (the build id is in both).
define split_debug
	install -d $(dir $(1)).debug
	objcopy --only-keep-debug $(1) $(dir $(1)).debug/$(notdir $(1)).debug
	chmod 644 $(dir $(1)).debug/$(notdir $(1)).debug
	strip --strip-unneeded $(1)
	objcopy --add-gnu-debuglink=$(dir $(1)).debug/$(notdir $(1)).debug $(1)
endef

install: lib libpmem crashtest man
	@rm -f $(BUILD)/pmem-sys.pc
	$(MAKE) --no-print-directory $(BUILD)/pmem-sys.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 755 $(RELEASE)/libpmem_sys.so $(DESTDIR)$(LIBDIR)/libpmem_sys.so.$(VERSION)
	ln -sf libpmem_sys.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpmem_sys.so
# The static library without debug info and without the LLVM bitcode
# rustc embeds for LTO (25 MB -> 4 MB); a C link needs neither.
	objcopy --strip-debug -R .llvmbc -R .llvmcmd $(RELEASE)/libpmem_sys.a $(DESTDIR)$(LIBDIR)/libpmem_sys.a
	chmod 644 $(DESTDIR)$(LIBDIR)/libpmem_sys.a
	install -D -m 755 $(RELEASE)/libpmem.so.1 $(DESTDIR)$(LIBDIR)/pmem-sys/libpmem.so.1
	install -m 644 include/pmem.h $(DESTDIR)$(INCDIR)/pmem.h
	install -D -m 755 $(RELEASE)/pmem-sys-crashtest $(DESTDIR)$(PREFIX)/bin/pmem-sys-crashtest
	install -m 644 $(BUILD)/pmem-sys.pc $(DESTDIR)$(LIBDIR)/pkgconfig/pmem-sys.pc
	@rm -f $(BUILD)/pmem-sys.pc
	$(call split_debug,$(DESTDIR)$(LIBDIR)/libpmem_sys.so.$(VERSION))
	$(call split_debug,$(DESTDIR)$(LIBDIR)/pmem-sys/libpmem.so.1)
	install -d $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -m 644 LICENSE-MIT LICENSE-APACHE README.md $(DESTDIR)$(DOCDIR)
	cp -P $(BUILD)/man/man3/*.3 $(DESTDIR)$(MANDIR)/man3
	cp -P $(BUILD)/man/man7/*.7 $(DESTDIR)$(MANDIR)/man7
	for f in $(wildcard $(BUILD)/man/man1/*.1); do install -m 644 $$f $(DESTDIR)$(MANDIR)/man1; done

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpmem_sys.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libpmem_sys.so $(DESTDIR)$(LIBDIR)/libpmem_sys.a \
	      $(DESTDIR)$(INCDIR)/pmem.h $(DESTDIR)$(LIBDIR)/pkgconfig/pmem-sys.pc
	rm -f $(DESTDIR)$(LIBDIR)/pmem-sys/libpmem.so.1
	rm -f $(DESTDIR)$(PREFIX)/bin/pmem-sys-crashtest
	-rmdir $(DESTDIR)$(LIBDIR)/pmem-sys 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/.debug/libpmem_sys.so.$(VERSION).debug \
	      $(DESTDIR)$(LIBDIR)/pmem-sys/.debug/libpmem.so.1.debug
	rmdir $(DESTDIR)$(LIBDIR)/.debug $(DESTDIR)$(LIBDIR)/pmem-sys/.debug $(DESTDIR)$(LIBDIR)/pmem-sys 2>/dev/null || true
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,LICENSE-MIT LICENSE-APACHE README.md) \
	      $(addprefix $(DESTDIR)$(MANDIR)/,$(shell python3 man/mkman.py --list))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# An installed copy in build/stage, which examples, C tests and bindings
# build against through pkg-config, as users do.
stage: lib
	$(MAKE) --no-print-directory install PREFIX=$(STAGE) DESTDIR=

examples: stage
	$(MAKE) --no-print-directory -C c-examples

demo: examples
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	echo "== hello (file $$dir/hello.pmem)" && \
	LD_LIBRARY_PATH=$(STAGE)/lib c-examples/hello "$$dir/hello.pmem" && \
	echo "== pmeminfo" && \
	LD_LIBRARY_PATH=$(STAGE)/lib c-examples/pmeminfo "$$dir/hello.pmem" "$$dir"

test: deps test-rust check-header test-symbols test-libpmem-symbols test-libpmem-unit test-libpmem test-c test-examples test-python test-crash test-bindings test-verify test-docs \
      test-doc test-man test-install
	@echo "make test: all passed"

test-rust:
	$(CARGO) test -p pmem-sys --release --features capi
	$(CARGO) test -p pmem-sys --release --features record --test store_widths

# The exported names; and the machine code: every fence leaf holds SFENCE,
# every write-back leaf its CLWB/CLFLUSHOPT/CLFLUSH (tests/verify/disasm.sh).
test-symbols: lib
	bash tests/check-symbols.sh $(RELEASE)/libpmem_sys.so tests/symbols.txt
	bash tests/verify/disasm.sh $(RELEASE)/libpmem_sys.so

# libpmem.so.1 exports exactly the 23 names of tests/libpmem-symbols.txt,
# each @@LIBPMEM_1.0, and libpmem_sys.so none of them.
test-libpmem-symbols: lib libpmem
	bash tests/check-libpmem-symbols.sh $(RELEASE)/libpmem.so.1 $(RELEASE)/libpmem_sys.so tests/libpmem-symbols.txt

# The compatibility layer's Rust unit tests, then a C program calling every
# function and flag through libpmem.so.1 (a few seconds).
test-libpmem-unit: libpmem
	$(CARGO) test -p pmdk-compat --release
	$(CARGO) test -p pmem-sys --release --features record --test store_widths_flags
	$(MAKE) --no-print-directory -C pmdk-compat/tests/c RELEASE=$(abspath $(RELEASE)) test

# Real PMDK programs on libpmem.so.1 (tests/libpmem/README.md): fio's
# libpmem engine (16 verified jobs), libpmemobj/blk/log pools with pmempool
# check written on one library and verified on the other, and a differential
# table against Debian's libpmem; each run proves which libpmem.so.1 the
# loader took.  As root it installs the Debian packages it needs (~25 s).
.PHONY: test-libpmem test-libpmem-qemu bench-libpmem-fio
test-libpmem: libpmem
	BUILD=$(abspath $(BUILD)) bash tests/libpmem/run.sh $(RELEASE) fio diff pools

# The DAX test bed's first boot (DAX_BOOTS=3: all three) with QEMU on
# libpmem.so.1, proven through /proc/PID/maps of the VM (root, 30-60 s).
test-libpmem-qemu: lib libpmem
	BUILD=$(abspath $(BUILD)) DAX_LIB=$(abspath $(RELEASE))/libpmem_sys.a DAX_INCLUDE=$(abspath include) \
	    bash tests/libpmem/run.sh $(RELEASE) qemu

# fio's libpmem engine on Debian's libpmem and on libpmem.so.1, alternating
# (BENCH_FIO_ROUNDS=15 rounds of BENCH_FIO_SECONDS=2 s for the 4 KiB job; ~3.5 min).
bench-libpmem-fio: libpmem
	BUILD=$(abspath $(BUILD)) bash tests/libpmem/run.sh $(RELEASE) bench-fio

test-examples: examples
	bash tests/examples.sh $(STAGE)

test-c: stage
	$(MAKE) --no-print-directory -C tests/c STAGE=$(STAGE) test
	$(MAKE) --no-print-directory -C tests/fault STAGE=$(STAGE) test

# Builds the wheel and sdist (as make wheel), installs the wheel into a fresh
# venv and runs the Python suite against it.
test-python:
	BUILD=$(abspath $(BUILD)) bash python/run-tests.sh

# The manylinux2014 abi3 wheel and the sdist, checked with auditwheel and
# twine (python/dist.sh; zig from PyPI links against glibc 2.17).
wheel:
	BUILD=$(abspath $(BUILD)) bash python/dist.sh

# One page per exported function (grouped), pmem_sys(7), and
# pmem_sys_libpmem(7), generated from include/pmem.h and the docs; not
# committed.
man:
	python3 man/mkman.py $(BUILD)/man

# Every exported function has a page and every page renders without warnings.
test-man:
	python3 man/mkman.py --check $(BUILD)/man

# make install into a temporary DESTDIR: stripped libraries with their debug
# files, the static library, licences, man pages, then make uninstall.
test-install: lib libpmem
	bash tests/install.sh

# The crate docs build without a warning, with and without the C API.
test-doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p pmem-sys --no-deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p pmem-sys --no-deps --features capi

# As root with apt-get, installs the Debian packages and koffi that the
# suites need; otherwise lists what is missing (tests/deps.sh).
deps:
	bash tests/deps.sh

test-bindings: stage
	bash bindings/run-tests.sh $(STAGE)

test-verify:
	bash tests/verify/run.sh

# Every code block of the READMEs, run verbatim in a fresh $HOME as a user
# would (tests/doc/readme_blocks.py: markers, rewrites, caches). ~3 min.
test-docs: lib
	python3 tests/doc/readme_blocks.py

# The crash-consistency tester (pmem-sys-crashtest, crashtest/README.md)
# and its proof on programs with planted bugs (tests/crash).
crashtest:
	$(CARGO) build -p pmem-sys-crashtest --release

test-crash: stage crashtest
	$(CARGO) test -p pmem-sys --release --features record --test crash_model
	bash tests/crash/run.sh $(STAGE) $(RELEASE)/pmem-sys-crashtest

bench: stage
	bash tests/bench/run.sh full

bench-smoke: stage
	bash tests/bench/run.sh smoke

fuzz:
	bash tests/verify/fuzz.sh $(FUZZ_SECONDS)

test-dax: lib
	bash tests/dax/run.sh

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
	$(MAKE) -C c-examples clean
