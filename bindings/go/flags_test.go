package pmem

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestStoreFlagValues(t *testing.T) {
	// PMDK's PMEM_F_MEM_* values, which the C header repeats.
	want := map[StoreFlag]uint{FNoDrain: 1, FNonTemporal: 2, FTemporal: 4, FWC: 8, FWB: 16, FNoFlush: 32}
	for f, v := range want {
		if uint(f) != v {
			t.Errorf("flag %#x, want %#x", uint(f), v)
		}
	}
}

// Every combination of the six flags, through each store call and at sizes
// below, around and above the non-temporal threshold, stores exactly the
// bytes asked for and nothing else; read back through the mapping and,
// after Persist, through the file.
func TestEveryFlagCombinationStoresTheData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.pmem")
	const size = 4 << 20
	m, err := MapFile(path, size, FileCreate, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if g := os.Getenv("PMEM_SYS_FORCE_GRANULARITY"); g != "" {
		got, err := m.Granularity()
		if err != nil || strings.ReplaceAll(got.String(), " ", "_") != g {
			t.Fatalf("granularity %v, %v; the child wants %s", got, err, g)
		}
	}
	want := make([]byte, size)
	sizes := []int{1, 7, 64, 300, 8192}
	off := 0
	for f := StoreFlag(0); f <= storeFlagsAll; f++ {
		for i, n := range sizes {
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(int(f)*7 + i*13 + j)
			}
			o := off + 3 // unaligned start
			if err := m.WriteFlags(o, p, f); err != nil {
				t.Fatalf("WriteFlags(flags %#x, %d bytes): %v", f, n, err)
			}
			copy(want[o:], p)
			o2 := o + n + 5
			if err := m.MemsetFlags(o2, byte(f)|0x80, n, f); err != nil {
				t.Fatalf("MemsetFlags(flags %#x, %d bytes): %v", f, n, err)
			}
			for j := 0; j < n; j++ {
				want[o2+j] = byte(f) | 0x80
			}
			// Overlapping moves, forwards and backwards.
			if err := m.MoveFlags(o+1, o, n, f); err != nil {
				t.Fatalf("MoveFlags forwards (flags %#x): %v", f, err)
			}
			copy(want[o+1:o+1+n], append([]byte(nil), want[o:o+n]...))
			if err := m.MoveFlags(o2-1, o2, n, f); err != nil {
				t.Fatalf("MoveFlags backwards (flags %#x): %v", f, err)
			}
			copy(want[o2-1:o2-1+n], append([]byte(nil), want[o2:o2+n]...))
			off = o2 + n + 64
		}
	}
	if off > size {
		t.Fatalf("test layout overflows the mapping: %d", off)
	}
	got := make([]byte, off)
	if err := m.Read(0, got); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want[:off]); i >= 0 {
		t.Fatalf("mapping differs at %d: %#x, want %#x", i, got[i], want[i])
	}
	if err := m.Persist(0, off); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(file[:off], want[:off]); i >= 0 {
		t.Fatalf("file differs at %d: %#x, want %#x", i, file[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestStoreFlagErrors(t *testing.T) {
	m, err := MapFile(filepath.Join(t.TempDir(), "f.pmem"), 8192, FileCreate, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []StoreFlag{64, 1 << 31, 1<<32 | 1, storeFlagsAll + 1} {
		wantErrno(t, m.WriteFlags(0, []byte("x"), bad), syscall.EINVAL, "Mapping.WriteFlags", "unknown bits")
		wantErrno(t, m.MemsetFlags(0, 'x', 1, bad), syscall.EINVAL, "Mapping.MemsetFlags")
		wantErrno(t, m.MoveFlags(1, 0, 1, bad), syscall.EINVAL, "Mapping.MoveFlags")
	}
	if b := m.Bytes()[:2]; !bytes.Equal(b, []byte{0, 0}) {
		t.Fatalf("a refused call stored %q", b)
	}
	wantErrno(t, m.WriteFlags(8190, []byte("xyz"), 0), syscall.EINVAL, "outside the mapping")
	wantErrno(t, m.MemsetFlags(-1, 0, 1, 0), syscall.EINVAL, "outside the mapping")
	wantErrno(t, m.MoveFlags(0, 8000, 500, 0), syscall.EINVAL, "outside the mapping")
	wantErrno(t, m.DeepPersist(8000, 500), syscall.EINVAL, "Mapping.DeepPersist", "outside the mapping")
	wantErrno(t, m.DeepFlush(0, 9000), syscall.EINVAL, "Mapping.DeepFlush")
	if err := m.WriteFlags(100, []byte("deep"), FNoFlush); err != nil {
		t.Fatal(err)
	}
	if err := m.DeepFlush(100, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.DeepPersist(0, 8192); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{m.WriteFlags(0, []byte("x"), 0), m.MemsetFlags(0, 0, 1, 0),
		m.MoveFlags(0, 1, 1, 0), m.DeepFlush(0, 1), m.DeepPersist(0, 1)} {
		if !errors.Is(err, fs.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
}

// The same, on the byte- and cache-line-granular paths of the engine (the
// granularity is forced through the knob, read when the library loads,
// so in child processes).
func TestFlagsOnEveryGranularity(t *testing.T) {
	if g := os.Getenv("PMEM_SYS_FORCE_GRANULARITY"); g != "" {
		t.Skipf("in the child (%s)", g) // the child runs the tests above
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"byte", "cache_line"} {
		cmd := exec.Command(exe, "-test.run=^(TestEveryFlagCombinationStoresTheData|TestStoreFlagErrors)$", "-test.v")
		cmd.Env = append(os.Environ(), "PMEM_SYS_FORCE_GRANULARITY="+g)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", g, err, out)
		}
		for _, name := range []string{"TestEveryFlagCombinationStoresTheData", "TestStoreFlagErrors"} {
			if !strings.Contains(string(out), "--- PASS: "+name) {
				t.Fatalf("%s: %s did not pass:\n%s", g, name, out)
			}
		}
	}
}
