package pmem_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"pmem-sys/pmem"
)

func Example() {
	dir, err := os.MkdirTemp("", "pmem-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "log.pmem")

	m, err := pmem.MapFile(path, 4096, pmem.FileCreate, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	// Copy, then make durable: Persist writes back and fences, or msyncs
	// when the file is not on a DAX filesystem.
	if err := m.Write(0, []byte("hello, pmem")); err != nil {
		log.Fatal(err)
	}
	if err := m.Persist(0, 11); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", m.Bytes()[:11])
	if err := m.Close(); err != nil {
		log.Fatal(err)
	}

	data, _ := os.ReadFile(path)
	fmt.Printf("%s\n", data[:11])

	_, err = pmem.MapFile(filepath.Join(dir, "missing"), 0, 0, 0)
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// hello, pmem
	// hello, pmem
	// true
}
