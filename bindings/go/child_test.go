package pmem

import (
	"os"
	"os/exec"
)

// runChild runs the test binary again with PMEM_SYS_FORCE_GRANULARITY=byte.
func runChild(exe string, args ...string) (string, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "PMEM_SYS_FORCE_GRANULARITY=byte")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
