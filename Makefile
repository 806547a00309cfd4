# pmem-sys: build, install, demo and test.
#
#   make demo      build the library and run the C examples on a temporary file
#   make test      everything testable on this machine (SKIPPED lines name the rest)
#   make install   PREFIX=/usr/local DESTDIR=
#   make bench     this library against PMDK's libpmem, side by side
#   make test-dax  the library inside a QEMU VM with an emulated NVDIMM

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
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
        test-rust test-c test-examples test-symbols test-python test-bindings test-verify test-docs \
        bench bench-smoke fuzz test-dax clean

all: lib libpmem

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

install: lib libpmem
	@rm -f $(BUILD)/pmem-sys.pc
	$(MAKE) --no-print-directory $(BUILD)/pmem-sys.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 755 $(RELEASE)/libpmem_sys.so $(DESTDIR)$(LIBDIR)/libpmem_sys.so.$(VERSION)
	ln -sf libpmem_sys.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpmem_sys.so
	install -m 644 $(RELEASE)/libpmem_sys.a $(DESTDIR)$(LIBDIR)/libpmem_sys.a
	install -D -m 755 $(RELEASE)/libpmem.so.1 $(DESTDIR)$(LIBDIR)/pmem-sys/libpmem.so.1
	install -m 644 include/pmem.h $(DESTDIR)$(INCDIR)/pmem.h
	install -m 644 $(BUILD)/pmem-sys.pc $(DESTDIR)$(LIBDIR)/pkgconfig/pmem-sys.pc
	@rm -f $(BUILD)/pmem-sys.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpmem_sys.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libpmem_sys.so $(DESTDIR)$(LIBDIR)/libpmem_sys.a \
	      $(DESTDIR)$(INCDIR)/pmem.h $(DESTDIR)$(LIBDIR)/pkgconfig/pmem-sys.pc
	rm -f $(DESTDIR)$(LIBDIR)/pmem-sys/libpmem.so.1
	-rmdir $(DESTDIR)$(LIBDIR)/pmem-sys 2>/dev/null

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

test: test-rust check-header test-symbols test-libpmem-symbols test-libpmem-unit test-libpmem test-c test-examples test-python test-bindings test-verify test-docs
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
# (BENCH_FIO_ROUNDS=5 rounds of BENCH_FIO_SECONDS=3 s per job; ~3 min).
bench-libpmem-fio: libpmem
	BUILD=$(abspath $(BUILD)) bash tests/libpmem/run.sh $(RELEASE) bench-fio

test-examples: examples
	bash tests/examples.sh $(STAGE)

test-c: stage
	$(MAKE) --no-print-directory -C tests/c STAGE=$(STAGE) test
	$(MAKE) --no-print-directory -C tests/fault STAGE=$(STAGE) test

test-python:
	bash python/run-tests.sh

test-bindings: stage
	bash bindings/run-tests.sh $(STAGE)

test-verify:
	bash tests/verify/run.sh

# Every code block of the READMEs, run verbatim in a fresh $HOME as a user
# would (tests/doc/readme_blocks.py: markers, rewrites, caches). ~3 min.
test-docs: lib
	python3 tests/doc/readme_blocks.py

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
