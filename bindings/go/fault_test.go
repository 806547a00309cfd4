package pmem

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A file truncated under a live mapping: the pages past the new end raise
// SIGBUS on access. Read and Write must return EIO (never stale bytes, never
// a dead process), and the pages still backed must keep working.
func TestBusErrorsAreEIO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "truncated.pmem")
	m, err := MapFile(path, 3*4096, FileCreate, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Write(0, bytes.Repeat([]byte("Z"), 3*4096)); err != nil {
		t.Fatal(err)
	}
	if err := m.Persist(0, 3*4096); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}

	buf := []byte("....")
	err = m.Read(2*4096, buf)
	pe := wantErrno(t, err, syscall.EIO, "memcpy_from_pmem")
	if pe.Op != "memcpy_from_pmem" || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Op %q, errors.Is EIO %v", pe.Op, errors.Is(err, syscall.EIO))
	}
	if bytes.Contains(buf, []byte("Z")) {
		t.Fatalf("Read returned stale bytes %q", buf)
	}

	// A read that starts on the backed page and runs into the hole: the
	// bytes before the fault are copied, the call still fails.
	long := make([]byte, 8192)
	err = m.Read(0, long)
	wantErrno(t, err, syscall.EIO)
	if !bytes.Equal(long[:4096], bytes.Repeat([]byte("Z"), 4096)) {
		t.Fatal("the backed page was not copied before the fault")
	}

	err = m.Write(2*4096, []byte("data"))
	wantErrno(t, err, syscall.EIO, "pmem_sys_memcpy_to_pmem_checked")

	// An overlapping Write whose source (a slice of Bytes) is in the hole.
	b := m.Bytes()
	err = m.Write(2*4096+1, b[2*4096:2*4096+8])
	wantErrno(t, err, syscall.EIO)

	// Still alive, and the first page still works.
	if err := m.Write(0, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if err := m.Read(0, got); err != nil || string(got) != "alive" {
		t.Fatalf("after the faults: %q, %v", got, err)
	}
	if err := m.Persist(0, 5); err != nil {
		t.Fatal(err)
	}
}
