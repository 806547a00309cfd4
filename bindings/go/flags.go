package pmem

/*
#cgo pkg-config: pmem-sys
#include <errno.h>
#include <stdio.h>
#include <pmem.h>

typedef struct {
	int err;
	char msg[512];
} gopmem_flags_error;

static void gopmem_flags_capture(gopmem_flags_error *e) {
	e->err = errno;
	snprintf(e->msg, sizeof e->msg, "%s", pmem_sys_errormsg());
}

static int gopmem_memcpy_flags(void *dst, const void *src, size_t n, unsigned flags, gopmem_flags_error *e) {
	int r = pmem_sys_memcpy_flags(dst, src, n, flags);
	if (r != 0) gopmem_flags_capture(e);
	return r;
}

static int gopmem_memmove_flags(void *dst, const void *src, size_t n, unsigned flags, gopmem_flags_error *e) {
	int r = pmem_sys_memmove_flags(dst, src, n, flags);
	if (r != 0) gopmem_flags_capture(e);
	return r;
}

static int gopmem_memset_flags(void *dst, int c, size_t n, unsigned flags, gopmem_flags_error *e) {
	int r = pmem_sys_memset_flags(dst, c, n, flags);
	if (r != 0) gopmem_flags_capture(e);
	return r;
}

static int gopmem_deep_flush(const void *addr, size_t n, gopmem_flags_error *e) {
	int r = pmem_sys_deep_flush(addr, n);
	if (r != 0) gopmem_flags_capture(e);
	return r;
}

static int gopmem_deep_persist(const void *addr, size_t n, gopmem_flags_error *e) {
	int r = pmem_sys_deep_persist(addr, n);
	if (r != 0) gopmem_flags_capture(e);
	return r;
}
*/
import "C"

import (
	"math"
	"syscall"
	"unsafe"
)

// StoreFlag changes how one store call copies and flushes (the values of
// PMDK's PMEM_F_MEM_* flags, which pmem.h's PMEM_SYS_F_* repeat). Combine with |; 0 is the default: the
// engine's choice of copy, written back, then drained.
type StoreFlag uint

const (
	// FNoDrain skips the final fence: the call's stores are not yet
	// durable; follow with Drain (on the same OS thread) or Persist.
	FNoDrain StoreFlag = C.PMEM_SYS_F_NODRAIN
	// FNonTemporal streams the data past the caches (non-temporal stores),
	// even below the engine's threshold.
	FNonTemporal StoreFlag = C.PMEM_SYS_F_NONTEMPORAL
	// FTemporal uses ordinary stores and writes the lines back; it never
	// streams.
	FTemporal StoreFlag = C.PMEM_SYS_F_TEMPORAL
	// FWC behaves as FNonTemporal (write-combining).
	FWC StoreFlag = C.PMEM_SYS_F_WC
	// FWB behaves as FTemporal (write-back).
	FWB StoreFlag = C.PMEM_SYS_F_WB
	// FNoFlush stores without writing anything back and without a fence
	// (it implies FNoDrain): Persist the range later.
	FNoFlush StoreFlag = C.PMEM_SYS_F_NOFLUSH
)

// storeFlagsAll is every defined bit; others are refused with EINVAL.
const storeFlagsAll = FNoDrain | FNonTemporal | FTemporal | FWC | FWB | FNoFlush

type flagsError = C.gopmem_flags_error

func flagsLibraryError(op string, e *flagsError) error {
	errno := syscall.Errno(e.err)
	msg := C.GoString(&e.msg[0])
	if errno == 0 {
		errno = syscall.EIO
	}
	if msg == "" {
		msg = op + ": " + errno.Error()
	}
	return &Error{Op: op, Errno: errno, Msg: msg}
}

func checkFlags(op string, flags StoreFlag) error {
	if uint64(flags) > math.MaxUint32 || flags&^storeFlagsAll != 0 {
		return bindingError(op, syscall.EINVAL, "flags %#x: unknown bits %#x", uint64(flags), uint64(flags&^storeFlagsAll))
	}
	return nil
}

// WriteFlags copies p into the mapping at off with pmem_sys_memcpy_flags:
// the flags choose non-temporal or temporal stores, and whether the call
// flushes and drains (by default it does both, so the data is durable on
// return). p may overlap the destination (a slice of Bytes): the copy is
// then pmem_sys_memmove_flags. Unknown flag bits give EINVAL and store
// nothing. Not fault-safe: a bus error kills the process (use Write).
func (m *Mapping) WriteFlags(off int, p []byte, flags StoreFlag) error {
	const op = "Mapping.WriteFlags"
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(op, off, len(p)); err != nil {
		return err
	}
	if err := checkFlags(op, flags); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	dst, src := unsafe.Add(m.addr, off), unsafe.Pointer(&p[0])
	var e flagsError
	if overlaps(dst, src, len(p)) {
		// SAFETY: check proved [off, off+len(p)) inside the live mapping
		// (the read lock keeps it mapped); src is p, len(p) bytes.
		if C.gopmem_memmove_flags(dst, src, C.size_t(len(p)), C.uint(flags), &e) != 0 {
			return flagsLibraryError("pmem_sys_memmove_flags", &e)
		}
		return nil
	}
	// SAFETY: as above; p is a Go buffer cgo keeps in place for the call.
	if C.gopmem_memcpy_flags(dst, src, C.size_t(len(p)), C.uint(flags), &e) != 0 {
		return flagsLibraryError("pmem_sys_memcpy_flags", &e)
	}
	return nil
}

// MoveFlags moves n bytes inside the mapping from srcOff to dstOff (the
// ranges may overlap) with pmem_sys_memmove_flags. Not fault-safe.
func (m *Mapping) MoveFlags(dstOff, srcOff, n int, flags StoreFlag) error {
	const op = "Mapping.MoveFlags"
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(op, dstOff, n); err != nil {
		return err
	}
	if err := m.check(op, srcOff, n); err != nil {
		return err
	}
	if err := checkFlags(op, flags); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	var e flagsError
	// SAFETY: both ranges were checked inside the live mapping.
	if C.gopmem_memmove_flags(unsafe.Add(m.addr, dstOff), unsafe.Add(m.addr, srcOff), C.size_t(n), C.uint(flags), &e) != 0 {
		return flagsLibraryError("pmem_sys_memmove_flags", &e)
	}
	return nil
}

// MemsetFlags fills n bytes at off with c through pmem_sys_memset_flags.
// Not fault-safe.
func (m *Mapping) MemsetFlags(off int, c byte, n int, flags StoreFlag) error {
	const op = "Mapping.MemsetFlags"
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(op, off, n); err != nil {
		return err
	}
	if err := checkFlags(op, flags); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	var e flagsError
	// SAFETY: the range was checked inside the live mapping.
	if C.gopmem_memset_flags(unsafe.Add(m.addr, off), C.int(c), C.size_t(n), C.uint(flags), &e) != 0 {
		return flagsLibraryError("pmem_sys_memset_flags", &e)
	}
	return nil
}

// DeepFlush makes [off, off+n) durable past the memory controller
// (pmem_sys_deep_flush): the lines are written back and fenced, then, on a
// device-DAX mapping whose nvdimm region has a deep_flush attribute, 1 is
// written to it; elsewhere the range is msynced. A system call: for rare
// points such as the end of a checkpoint.
func (m *Mapping) DeepFlush(off, n int) error {
	return m.deep("Mapping.DeepFlush", "pmem_sys_deep_flush", off, n, false)
}

// DeepPersist is DeepFlush that also returns an msync failure an earlier
// WmbPmem of this OS thread recorded, as Persist does
// (pmem_sys_deep_persist).
func (m *Mapping) DeepPersist(off, n int) error {
	return m.deep("Mapping.DeepPersist", "pmem_sys_deep_persist", off, n, true)
}

func (m *Mapping) deep(op, call string, off, n int, persist bool) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(op, off, n); err != nil {
		return err
	}
	var e flagsError
	addr := unsafe.Add(m.addr, off)
	var r C.int
	// SAFETY: the range was checked inside the live mapping.
	if persist {
		r = C.gopmem_deep_persist(addr, C.size_t(n), &e)
	} else {
		r = C.gopmem_deep_flush(addr, C.size_t(n), &e)
	}
	if r != 0 {
		return flagsLibraryError(call, &e)
	}
	return nil
}
