package pmem

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// wantErrno fails unless err is an *Error with the given errno whose
// message contains every fragment.
func wantErrno(t *testing.T, err error, errno syscall.Errno, fragments ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", errno)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *pmem.Error", err, err)
	}
	if !errors.Is(err, errno) || pe.Errno != errno {
		t.Fatalf("errno %d (%v), want %d (%v); message %q", int(pe.Errno), pe.Errno, int(errno), errno, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("message %q lacks %q", err.Error(), f)
		}
	}
	return pe
}

func TestMapFileMissingIsENOENT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.pmem")
	m, err := MapFile(path, 0, 0, 0)
	if m != nil {
		t.Fatal("got a mapping for a missing file")
	}
	wantErrno(t, err, syscall.ENOENT, "pmem_sys_map_file", path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("errors.Is(%v, fs.ErrNotExist) is false", err)
	}
}

func TestMapFileExclOnExistingIsEEXIST(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exists.pmem")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := MapFile(path, 4096, FileCreate|FileExcl, 0o600)
	wantErrno(t, err, syscall.EEXIST, "pmem_sys_map_file", "EXCL")
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("errors.Is(%v, fs.ErrExist) is false", err)
	}
	// The failed call must leave the file as it was.
	if got, _ := os.ReadFile(path); string(got) != "keep me" {
		t.Fatalf("file now holds %q", got)
	}
}

func TestMapFileBadFlagsIsEINVAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.pmem")
	_, err := MapFile(path, 4096, FileCreate|Flag(0x100), 0o600)
	wantErrno(t, err, syscall.EINVAL, "pmem_sys_map_file", "flags", "unknown bits 0x100")
	// EXCL without CREATE is refused too.
	_, err = MapFile(path, 4096, FileExcl, 0o600)
	wantErrno(t, err, syscall.EINVAL, "require PMEM_SYS_FILE_CREATE")
	if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		t.Fatalf("a refused call created %s (%v)", path, statErr)
	}
}

func TestMapFileArgumentChecks(t *testing.T) {
	_, err := MapFile(filepath.Join(t.TempDir(), "f"), -1, FileCreate, 0o600)
	wantErrno(t, err, syscall.EINVAL, "size -1")
	_, err = MapFile("bad\x00path", 4096, FileCreate, 0o600)
	wantErrno(t, err, syscall.EINVAL, "NUL")
	if ^uint(0) > math.MaxUint32 { // 64-bit: a Flag wider than C's unsigned int
		path := filepath.Join(t.TempDir(), "wide")
		wide := uint64(1) << 32 // a variable, so that 32-bit builds compile
		_, err = MapFile(path, 4096, Flag(wide)|FileCreate, 0o600)
		wantErrno(t, err, syscall.EINVAL, "wider than unsigned int")
		if _, statErr := os.Stat(path); statErr == nil {
			t.Fatal("a refused call created the file")
		}
		_, err = Memremap(int(wide), 0, 4096)
		wantErrno(t, err, syscall.EBADF, "not a C int")
	}
}

func TestMemremapReadOnlyFdIsEACCES(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.pmem")
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Memremap(int(f.Fd()), 0, 4096)
	wantErrno(t, err, syscall.EACCES, "memremap_pmem", "read-only")
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("errors.Is(%v, fs.ErrPermission) is false", err)
	}
}

func TestMemremapErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rw.pmem")
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	_, err = Memremap(fd, 0, 8193)
	wantErrno(t, err, syscall.EINVAL, "past the end of the file")
	_, err = Memremap(fd, 1, 4096)
	wantErrno(t, err, syscall.EINVAL, "page size")
	_, err = Memremap(fd, -4096, 4096)
	wantErrno(t, err, syscall.EINVAL, "offset -4096")
	_, err = Memremap(-1, 0, 4096)
	wantErrno(t, err, syscall.EBADF)
}

func TestMemremapOffsetRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rw.pmem")
	if err := os.WriteFile(path, make([]byte, 3*4096), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	m, err := Memremap(int(f.Fd()), int64(page), page)
	if err != nil {
		t.Fatal(err)
	}
	// The mapping outlives the descriptor.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Len() != page {
		t.Fatalf("Len %d, want %d", m.Len(), page)
	}
	if err := m.Write(3, []byte("second page")); err != nil {
		t.Fatal(err)
	}
	if err := m.Persist(0, m.Len()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "second page"; string(got[page+3:page+3+len(want)]) != want {
		t.Fatalf("file at %d holds %q", page+3, got[page+3:page+3+len(want)])
	}
	if !bytes.Equal(got[:page], make([]byte, page)) {
		t.Fatal("the first page changed")
	}
}

func TestRoundTripThroughTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rt.pmem")
	const size = 3*4096 + 100 // not a whole number of pages
	m, err := MapFile(path, size, FileCreate|FileExcl, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Len() != size {
		t.Fatalf("Len %d, want %d", m.Len(), size)
	}
	// Large enough for the non-temporal path, at an unaligned offset.
	big := bytes.Repeat([]byte("0123456789abcdef"), 600)
	tail := []byte("the last bytes")
	// Two copies behind one fence, on one OS thread as Drain requires.
	runtime.LockOSThread()
	if err := m.Write(7, big); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(size-len(tail), tail); err != nil {
		t.Fatal(err)
	}
	err = Drain()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Persist(0, size); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(big))
	if err := m.Read(7, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, big) {
		t.Fatal("Read does not return what Write wrote")
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size {
		t.Fatalf("file is %d bytes, want %d", len(got), size)
	}
	if !bytes.Equal(got[7:7+len(big)], big) || !bytes.Equal(got[size-len(tail):], tail) {
		t.Fatal("the file does not hold what was written")
	}
	if got[6] != 0 || got[7+len(big)] != 0 {
		t.Fatal("bytes next to the written range changed")
	}
}

func TestBytesIsTheMappingItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "view.pmem")
	m, err := MapFile(path, 4096, FileCreate, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	if len(b) != 4096 {
		t.Fatalf("len(Bytes()) = %d", len(b))
	}
	// Written by the library, seen through the slice: no copy in between.
	if err := m.Write(100, []byte("through the library")); err != nil {
		t.Fatal(err)
	}
	if got := string(b[100:119]); got != "through the library" {
		t.Fatalf("Bytes sees %q", got)
	}
	// Plain stores through the slice, made durable with Persist, reach the file.
	copy(b[2000:], "plain stores")
	if n := MemcpyToPmem(b[3000:3010], []byte("by MemcpyToPmem")); n != 10 {
		t.Fatalf("MemcpyToPmem copied %d bytes, want 10", n)
	}
	WmbPmem()
	if err := m.Persist(2000, 12); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[2000:2012]) != "plain stores" || string(got[3000:3011]) != "by MemcpyT\x00" {
		t.Fatalf("file holds %q and %q", got[2000:2012], got[3000:3011])
	}
	if m.Bytes() != nil {
		t.Fatal("Bytes after Close is not nil")
	}
}

func TestRangeChecks(t *testing.T) {
	m, err := MapFile(t.TempDir(), 4096, FileCreate|FileTmpfile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	copy(m.Bytes(), bytes.Repeat([]byte{0xAA}, 4096))
	buf := make([]byte, 8)
	maxInt := int(^uint(0) >> 1)
	for _, c := range []struct{ off, n int }{
		{-1, 8}, {4089, 8}, {4096, 1}, {4097, 0}, {maxInt, 8},
	} {
		wantErrno(t, m.Write(c.off, buf[:c.n]), syscall.EINVAL, "Mapping.Write", "outside the mapping")
		wantErrno(t, m.Read(c.off, buf[:c.n]), syscall.EINVAL, "Mapping.Read", "outside the mapping")
		wantErrno(t, m.Persist(c.off, c.n), syscall.EINVAL, "Mapping.Persist", "outside the mapping")
	}
	// Lengths whose sum with the offset would overflow.
	wantErrno(t, m.Persist(8, maxInt), syscall.EINVAL, "Mapping.Persist")
	wantErrno(t, m.Persist(maxInt, maxInt), syscall.EINVAL, "Mapping.Persist")
	wantErrno(t, m.Persist(0, -1), syscall.EINVAL, "length -1")
	for i, v := range m.Bytes() {
		if v != 0xAA {
			t.Fatalf("byte %d changed to %#x by a refused call", i, v)
		}
	}
	// The edges themselves are fine.
	if err := m.Write(4088, buf); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(4096, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Persist(4096, 0); err != nil {
		t.Fatal(err)
	}
}

// Sources and destinations sliced from the same mapping may overlap, as
// with Go's copy.
func TestOverlappingCopies(t *testing.T) {
	m, err := MapFile(t.TempDir(), 8192, FileCreate|FileTmpfile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	pattern := make([]byte, 5000)
	for i := range pattern {
		pattern[i] = byte(i*7 + i/256)
	}
	reset := func() { copy(b, make([]byte, len(b))); copy(b[1000:], pattern) }

	reset() // forward overlap: destination after the source
	if err := m.Write(1003, b[1000:6000]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[1003:6003], pattern) {
		t.Fatal("Write with the destination after an overlapping source")
	}
	reset() // backward overlap
	if n := MemcpyToPmem(b[997:], b[1000:6000]); n != 5000 || !bytes.Equal(b[997:5997], pattern) {
		t.Fatalf("MemcpyToPmem with the destination before an overlapping source (n=%d)", n)
	}
	reset() // Read into a slice of the mapping that overlaps the source
	if err := m.Read(1000, b[1064:6064]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[1064:6064], pattern) {
		t.Fatal("Read into an overlapping slice")
	}
}

func TestUseAfterClose(t *testing.T) {
	m, err := MapFile(t.TempDir(), 4096, FileCreate|FileTmpfile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, gErr := m.Granularity()
	_, rErr := m.Reason()
	for name, err := range map[string]error{
		"Write":       m.Write(0, []byte("x")),
		"Read":        m.Read(0, make([]byte, 1)),
		"Persist":     m.Persist(0, 1),
		"Granularity": gErr,
		"Reason":      rErr,
		"Close":       m.Close(),
	} {
		wantErrno(t, err, syscall.EBADF, "Mapping."+name, "closed")
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s: errors.Is(%v, fs.ErrClosed) is false", name, err)
		}
	}
	if m.Len() != 4096 {
		t.Fatalf("Len after Close is %d", m.Len())
	}
}

// Close waits for calls in progress and the calls after it fail cleanly;
// run with -race to check the locking as well.
func TestCloseDuringWrites(t *testing.T) {
	m, err := MapFile(t.TempDir(), 1<<20, FileCreate|FileTmpfile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{1}, 64<<10)
	var wg, started sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		started.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				err := m.Write((g*4+i%4)*len(data), data)
				if i == 0 {
					started.Done()
				}
				if errors.Is(err, fs.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	started.Wait() // every writer is in its loop
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestGranularityAndReason(t *testing.T) {
	m, err := MapFile(t.TempDir(), 4096, FileCreate|FileTmpfile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g, err := m.Granularity()
	if err != nil {
		t.Fatal(err)
	}
	switch g {
	case GranularityByte, GranularityCacheLine, GranularityPage:
	default:
		t.Fatalf("granularity %v", g)
	}
	r, err := m.Reason()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r, "granularity") && !strings.Contains(r, "msync") {
		t.Fatalf("reason %q does not explain a granularity", r)
	}
	t.Logf("granularity %v: %s", g, r)
}

func TestGranularityFollowsTheForcingKnob(t *testing.T) {
	// The knob is read when the library loads, so this is checked in a
	// child process that inherits it.
	if os.Getenv("PMEM_SYS_FORCE_GRANULARITY") == "byte" {
		m, err := MapFile(t.TempDir(), 4096, FileCreate|FileTmpfile, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if g, err := m.Granularity(); err != nil || g != GranularityByte {
			t.Fatalf("granularity %v, %v; want byte", g, err)
		}
		if r, _ := m.Reason(); !strings.Contains(r, "PMEM_SYS_FORCE_GRANULARITY") {
			t.Fatalf("reason %q does not name the knob", r)
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runChild(exe, "-test.run=^TestGranularityFollowsTheForcingKnob$", "-test.v")
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "--- PASS: TestGranularityFollowsTheForcingKnob") {
		t.Fatalf("the child did not run the test:\n%s", out)
	}
}

func TestPackageFunctions(t *testing.T) {
	impl := Implementation()
	if !regexp.MustCompile(`^[a-z0-9_]+/[a-z0-9]+\+[a-z0-9-]+$`).MatchString(impl) {
		t.Fatalf("Implementation() = %q", impl)
	}
	if v := Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("Version() = %q", v)
	}
	// Every x86_64 CPU has CLFLUSH and SFENCE, and aarch64 has DC CVAP or
	// DC CVAC with DSB; only the portable fallback lacks the API.
	generic := strings.HasPrefix(impl, "generic/")
	if ArchHasPmemApi() == generic || ArchHasWmbPmem() == generic {
		t.Fatalf("ArchHasPmemApi %v, ArchHasWmbPmem %v with %s", ArchHasPmemApi(), ArchHasWmbPmem(), impl)
	}
	if MemcpyToPmem(nil, []byte("x")) != 0 || MemcpyToPmem(make([]byte, 1), nil) != 0 {
		t.Fatal("MemcpyToPmem with an empty slice copied something")
	}
	dst := make([]byte, 5)
	if n := MemcpyToPmem(dst, []byte("abc")); n != 3 || string(dst) != "abc\x00\x00" {
		t.Fatalf("MemcpyToPmem: %d, %q", n, dst)
	}
	if err := Drain(); err != nil {
		t.Fatal(err)
	}
	t.Logf("libpmem_sys %s, %s", Version(), impl)
}
