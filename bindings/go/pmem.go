// Package pmem binds libpmem_sys, the Linux kernel's persistent-memory API
// (include/linux/pmem.h) in user space, through cgo and pkg-config.
//
// A Mapping is a file or device-DAX range mapped shared and read-write.
// Stores reach persistent memory in two steps, as in the kernel: a copy
// that writes the data back or streams it past the caches (Write,
// MemcpyToPmem), then a fence that orders and completes those writes
// (WmbPmem, Drain). Persist does both for a range written by any means,
// including plain stores through Bytes().
//
// How a store becomes durable depends on the mapping's Granularity: byte
// (the CPU caches are persistent, eADR), cache line (flush and fence) or
// page (the page cache stands in between and the library msyncs). Reason
// says why a mapping got the granularity it has.
//
// The package builds against an installed library: pkg-config must find
// pmem-sys.pc (set PKG_CONFIG_PATH for a private prefix), and the dynamic
// loader must find libpmem_sys.so.0 at run time.
package pmem

/*
#cgo pkg-config: pmem-sys
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pmem.h>

// The library keeps its error message per OS thread, and a goroutine may
// move to another thread between two cgo calls. So every fallible call goes
// through a wrapper that copies errno and the message out on the thread
// that failed, before anything else can run there.
typedef struct {
	int err;
	char msg[512];
} gopmem_error;

static void gopmem_capture(gopmem_error *e) {
	e->err = errno;
	snprintf(e->msg, sizeof e->msg, "%s", pmem_sys_errormsg());
}

static void *gopmem_map_file(const char *path, size_t size, unsigned int flags,
                             mode_t mode, size_t *mapped, gopmem_error *e) {
	void *p = pmem_sys_map_file(path, size, flags, mode, mapped);
	if (p == NULL) gopmem_capture(e);
	return p;
}

static void *gopmem_memremap(int fd, uint64_t offset, size_t size, gopmem_error *e) {
	void *p = memremap_pmem(fd, offset, size);
	if (p == NULL) gopmem_capture(e);
	return p;
}

static int gopmem_unmap(void *addr, gopmem_error *e) {
	int r = memunmap_pmem(addr);
	if (r != 0) gopmem_capture(e);
	return r;
}

static int gopmem_persist(const void *addr, size_t n, gopmem_error *e) {
	int r = pmem_sys_persist(addr, n);
	if (r != 0) gopmem_capture(e);
	return r;
}

static int gopmem_drain(gopmem_error *e) {
	int r = pmem_sys_drain();
	if (r != 0) gopmem_capture(e);
	return r;
}

static int gopmem_granularity(const void *addr, size_t n, gopmem_error *e) {
	int r = pmem_sys_granularity(addr, n);
	if (r < 0) gopmem_capture(e);
	return r;
}

// The fault-safe copies: a bus error (a page truncated under the mapping,
// poisoned media) returns -1 with errno EIO instead of killing the process.
static int gopmem_read(void *dst, const void *src, size_t n, gopmem_error *e) {
	int r = memcpy_from_pmem(dst, src, n);
	if (r != 0) gopmem_capture(e);
	return r;
}

static int gopmem_write(void *dst, const void *src, size_t n, gopmem_error *e) {
	int r = pmem_sys_memcpy_to_pmem_checked(dst, src, n);
	if (r != 0) gopmem_capture(e);
	return r;
}

static const char *gopmem_reason(const void *addr, gopmem_error *e) {
	const char *r = pmem_sys_mapping_reason(addr);
	if (r == NULL) gopmem_capture(e);
	return r;
}
*/
import "C"

import (
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Flag selects how MapFile opens its file.
type Flag uint

const (
	// FileCreate creates the file if it is missing and grows it if shorter
	// than the size asked for (it never shrinks a file).
	FileCreate Flag = C.PMEM_SYS_FILE_CREATE
	// FileExcl, with FileCreate, fails with EEXIST if the file exists.
	FileExcl Flag = C.PMEM_SYS_FILE_EXCL
	// FileSparse, with FileCreate, grows the file with ftruncate instead of
	// allocating every block.
	FileSparse Flag = C.PMEM_SYS_FILE_SPARSE
	// FileTmpfile, with FileCreate, treats the path as a directory and maps
	// an unnamed temporary file created in it (O_TMPFILE).
	FileTmpfile Flag = C.PMEM_SYS_FILE_TMPFILE
)

// Granularity is the smallest unit in which stores to a mapping become
// durable, and so what Persist must do.
type Granularity int

const (
	// GranularityByte: the CPU caches are in the persistence domain (eADR);
	// a fence is enough.
	GranularityByte Granularity = C.PMEM_SYS_GRANULARITY_BYTE
	// GranularityCacheLine: cache lines must be written back, then fenced.
	GranularityCacheLine Granularity = C.PMEM_SYS_GRANULARITY_CACHE_LINE
	// GranularityPage: the page cache stands between stores and the media;
	// durability takes an msync.
	GranularityPage Granularity = C.PMEM_SYS_GRANULARITY_PAGE
)

func (g Granularity) String() string {
	switch g {
	case GranularityByte:
		return "byte"
	case GranularityCacheLine:
		return "cache line"
	case GranularityPage:
		return "page"
	}
	return fmt.Sprintf("Granularity(%d)", int(g))
}

// Mapping is a range of a file or device-DAX node mapped by the library.
// Its methods are safe for concurrent use; Close waits for calls in
// progress. Close it when done: a Mapping is not unmapped by the garbage
// collector, because a slice from Bytes may outlive the Mapping value and
// an unmap behind its back would turn the next access into a fault.
type Mapping struct {
	mu   sync.RWMutex
	addr unsafe.Pointer // nil once closed
	size int
}

// MapFile opens path (creating it with FileCreate), sizes it and maps it.
// A size of 0 without FileCreate maps the whole existing file. mode gives
// the permission bits of a file it creates.
//
// A missing file gives an error for which errors.Is(err, fs.ErrNotExist)
// holds; every error is an *Error carrying the errno and the library's
// message.
func MapFile(path string, size int, flags Flag, mode fs.FileMode) (*Mapping, error) {
	const op = "pmem_sys_map_file"
	if size < 0 {
		return nil, bindingError(op, syscall.EINVAL, "size %d: negative", size)
	}
	if uint64(flags) > math.MaxUint32 {
		// C.uint would drop the high bits: 1<<32|1 must not become FileCreate.
		return nil, bindingError(op, syscall.EINVAL, "flags %#x: wider than unsigned int", uint64(flags))
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, bindingError(op, syscall.EINVAL, "path %q: contains a NUL byte", path)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var mapped C.size_t
	var e C.gopmem_error
	p := C.gopmem_map_file(cpath, C.size_t(size), C.uint(flags), C.mode_t(mode.Perm()), &mapped, &e)
	if p == nil {
		return nil, libraryError(op, &e)
	}
	return &Mapping{addr: p, size: int(mapped)}, nil
}

// Memremap maps [offset, offset+size) of fd, which must be open read-write
// (a read-only descriptor gives EACCES). offset must be a multiple of the
// page size. fd may be closed afterwards; the mapping stays.
func Memremap(fd int, offset int64, size int) (*Mapping, error) {
	const op = "memremap_pmem"
	if fd < math.MinInt32 || fd > math.MaxInt32 {
		return nil, bindingError(op, syscall.EBADF, "fd %d: not a C int", fd)
	}
	if offset < 0 {
		return nil, bindingError(op, syscall.EINVAL, "offset %d: negative", offset)
	}
	if size < 0 {
		return nil, bindingError(op, syscall.EINVAL, "size %d: negative", size)
	}
	var e C.gopmem_error
	p := C.gopmem_memremap(C.int(fd), C.uint64_t(offset), C.size_t(size), &e)
	if p == nil {
		return nil, libraryError(op, &e)
	}
	return &Mapping{addr: p, size: size}, nil
}

// Len is the length of the mapping in bytes, as asked for (not rounded to
// pages). It stays valid after Close.
func (m *Mapping) Len() int { return m.size }

// Bytes returns the mapped memory itself, not a copy. Stores through it
// are ordinary stores: make them durable with Persist.
//
// The slice is valid only until Close. Touching it afterwards faults
// (SIGSEGV), which the Go runtime cannot recover from. After Close, Bytes
// returns nil.
func (m *Mapping) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.addr == nil {
		return nil
	}
	// SAFETY: addr is the start of a live mapping of m.size bytes, readable
	// and writable, and it stays mapped until Close; the doc comment makes
	// use after Close the caller's error.
	return unsafe.Slice((*byte)(m.addr), m.size)
}

// Write copies p into the mapping at off with the checked copy
// (pmem_sys_memcpy_to_pmem_checked): when it returns the data is written
// back or streamed to the media but not yet ordered. p may be a slice of
// Bytes that overlaps the destination, as with copy.
//
// Write survives bus errors: when a destination page faults (the file was
// truncated under the mapping, say) it returns an error for which
// errors.Is(err, syscall.EIO) holds, and the process goes on; the bytes
// before the faulting offset are written.
//
// Follow with Persist(off, len(p)), which works from any goroutine. Drain
// and WmbPmem complete only the copies made on the calling OS thread (the
// fence is per CPU, and page-granular ranges are remembered per thread),
// so they fit only under runtime.LockOSThread held across the Writes and
// the fence: the way to batch many Writes behind one fence.
func (m *Mapping) Write(off int, p []byte) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("Mapping.Write", off, len(p)); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	dst := unsafe.Add(m.addr, off)
	src := unsafe.Pointer(&p[0])
	if overlaps(dst, src, len(p)) {
		// p is a slice of Bytes overlapping the destination. The checked
		// copy assumes disjoint ranges: read the source out first with the
		// fault-safe read, then write that copy.
		tmp := make([]byte, len(p))
		var e C.gopmem_error
		// SAFETY: p is inside the live mapping (it overlaps it and is a Go
		// slice of len(p) bytes); tmp is a fresh Go buffer of len(p) bytes.
		if C.gopmem_read(unsafe.Pointer(&tmp[0]), src, C.size_t(len(p)), &e) != 0 {
			return libraryError("memcpy_from_pmem", &e)
		}
		src = unsafe.Pointer(&tmp[0])
		defer runtime.KeepAlive(tmp)
	}
	var e C.gopmem_error
	// SAFETY: check proved [off, off+len(p)) inside the live mapping, which
	// the read lock keeps mapped; src is a Go buffer of len(p) bytes that
	// cgo keeps in place for the call, disjoint from the destination.
	if C.gopmem_write(dst, src, C.size_t(len(p)), &e) != 0 {
		return libraryError("pmem_sys_memcpy_to_pmem_checked", &e)
	}
	return nil
}

func overlaps(a, b unsafe.Pointer, n int) bool {
	x, y := uintptr(a), uintptr(b)
	return y < x+uintptr(n) && x < y+uintptr(n)
}

// copyToPmem is memcpy_to_pmem, or pmem_sys_memmove when the ranges
// overlap (a source sliced from Bytes): the library's copy assumes
// disjoint ranges, Go's copy does not, and this package follows Go.
// dst and src must be valid for n > 0 bytes. Not fault-safe.
func copyToPmem(dst, src unsafe.Pointer, n int) {
	if overlaps(dst, src, n) {
		C.pmem_sys_memmove(dst, src, C.size_t(n))
	} else {
		C.memcpy_to_pmem(dst, src, C.size_t(n))
	}
}

// Read copies len(p) bytes of the mapping at off into p with the
// fault-safe memcpy_from_pmem. A bus error (a page truncated under the
// mapping, poisoned media) returns an error for which errors.Is(err,
// syscall.EIO) holds, never stale bytes; p holds the bytes before the
// fault, and the process goes on.
func (m *Mapping) Read(off int, p []byte) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("Mapping.Read", off, len(p)); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	src := unsafe.Add(m.addr, off)
	dst := unsafe.Pointer(&p[0])
	var tmp []byte
	if overlaps(dst, src, len(p)) {
		// p is a slice of Bytes overlapping the source: read into a fresh
		// buffer first (memcpy_from_pmem assumes disjoint ranges).
		tmp = make([]byte, len(p))
		dst = unsafe.Pointer(&tmp[0])
	}
	var e C.gopmem_error
	// SAFETY: check proved [off, off+len(p)) inside the live mapping, which
	// the read lock keeps mapped; dst is a Go buffer of len(p) bytes.
	if C.gopmem_read(dst, src, C.size_t(len(p)), &e) != 0 {
		return libraryError("memcpy_from_pmem", &e)
	}
	if tmp != nil {
		copy(p, tmp) // plain stores into the mapping, as the caller chose
	}
	return nil
}

// Persist makes [off, off+n) durable now: write-back and fence (cache-line
// granularity), fence (byte) or msync of the pages (page). It covers
// stores made by any means, Bytes included.
func (m *Mapping) Persist(off, n int) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("Mapping.Persist", off, n); err != nil {
		return err
	}
	var e C.gopmem_error
	// SAFETY: check proved the range inside the live mapping.
	if C.gopmem_persist(unsafe.Add(m.addr, off), C.size_t(n), &e) != 0 {
		return libraryError("pmem_sys_persist", &e)
	}
	return nil
}

// Granularity reports the store granularity of the mapping.
func (m *Mapping) Granularity() (Granularity, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("Mapping.Granularity", 0, m.size); err != nil {
		return 0, err
	}
	var e C.gopmem_error
	g := C.gopmem_granularity(m.addr, C.size_t(m.size), &e)
	if g < 0 {
		return 0, libraryError("pmem_sys_granularity", &e)
	}
	return Granularity(g), nil
}

// Reason says why the mapping has its granularity, for example "MAP_SYNC
// refused (EOPNOTSUPP): /tmp is not a DAX mount (tmpfs); page granularity,
// durability by msync".
func (m *Mapping) Reason() (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check("Mapping.Reason", 0, 0); err != nil {
		return "", err
	}
	var e C.gopmem_error
	r := C.gopmem_reason(m.addr, &e)
	if r == nil {
		return "", libraryError("pmem_sys_mapping_reason", &e)
	}
	// The string lives until the unmap, which the read lock holds off.
	return C.GoString(r), nil
}

// Close unmaps the mapping. Every later call on m, a second Close
// included, returns an error for which errors.Is(err, fs.ErrClosed) holds.
// Slices from Bytes must not be used after Close.
func (m *Mapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.addr == nil {
		return closedError("Mapping.Close")
	}
	var e C.gopmem_error
	if C.gopmem_unmap(m.addr, &e) != 0 {
		return libraryError("memunmap_pmem", &e)
	}
	m.addr = nil
	return nil
}

// libraryError turns what a gopmem_ wrapper captured into an *Error.
func libraryError(op string, e *C.gopmem_error) error {
	errno := syscall.Errno(e.err)
	msg := C.GoString(&e.msg[0])
	if errno == 0 {
		// The library sets errno on every failure; should that ever break,
		// report an I/O error rather than a success-looking errno 0.
		errno = syscall.EIO
	}
	if msg == "" {
		msg = op + ": " + errno.Error()
	}
	return &Error{Op: op, Errno: errno, Msg: msg}
}

// check validates [off, off+n) against the mapping; callers hold m.mu.
func (m *Mapping) check(op string, off, n int) error {
	if m.addr == nil {
		return closedError(op)
	}
	// Written so that no sum can overflow.
	if off < 0 || n < 0 || off > m.size || n > m.size-off {
		return bindingError(op, syscall.EINVAL,
			"offset %d, length %d: outside the mapping (%d bytes)", off, n, m.size)
	}
	return nil
}

// MemcpyToPmem copies min(len(dst), len(src)) bytes from src to dst with
// memcpy_to_pmem and returns that count. dst is normally a slice of
// Mapping.Bytes; the copy is written back or streamed but not ordered:
// follow with Drain or WmbPmem. Like copy, it allows the slices to
// overlap (it then uses pmem_sys_memmove).
func MemcpyToPmem(dst, src []byte) int {
	n := len(dst)
	if len(src) < n {
		n = len(src)
	}
	if n == 0 {
		return 0
	}
	// SAFETY: both slices hold at least n bytes; cgo keeps Go memory in
	// place for the call; a dst from Bytes is valid while its Mapping is
	// open (the caller's contract, as for Bytes itself).
	copyToPmem(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), n)
	return n
}

// WmbPmem makes every earlier MemcpyToPmem and Write of the calling OS
// thread durable (an SFENCE on x86_64; msync of the ranges of
// page-granular mappings). An msync failure is kept and reported by the
// next Drain or Persist; prefer Drain, which returns it.
//
// Go moves goroutines between OS threads at will, so a fence is only
// meaningful with runtime.LockOSThread held from the first copy to the
// fence. Without that, use Mapping.Persist.
func WmbPmem() { C.wmb_pmem() }

// Drain is WmbPmem that reports msync failures of page-granular ranges.
// Like WmbPmem it covers the calling OS thread's copies only.
func Drain() error {
	var e C.gopmem_error
	if C.gopmem_drain(&e) != 0 {
		return libraryError("pmem_sys_drain", &e)
	}
	return nil
}

// ArchHasPmemApi reports whether the CPU has the flush and fence
// instructions the pmem API needs.
func ArchHasPmemApi() bool { return bool(C.arch_has_pmem_api()) }

// ArchHasWmbPmem reports whether WmbPmem can make stores durable on this
// CPU (false for the portable fallback, where only msync can).
func ArchHasWmbPmem() bool { return bool(C.arch_has_wmb_pmem()) }

// Implementation names the operation table in use, such as
// "x86_64/avx2+clflushopt".
func Implementation() string { return C.GoString(C.pmem_sys_impl()) }

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.pmem_sys_version()) }
