package pmem

import (
	"fmt"
	"io/fs"
	"syscall"
)

// Error is the error of every failing call of this package. It unwraps to
// its errno, so errors.Is(err, fs.ErrNotExist), errors.Is(err,
// syscall.EEXIST) and the like work.
type Error struct {
	// Op is the library call ("pmem_sys_map_file") or, for a check made in
	// Go before calling the library, the method ("Mapping.Write").
	Op string
	// Errno is the errno the call set (EINVAL for failed argument checks,
	// EBADF for a closed Mapping).
	Errno syscall.Errno
	// Msg names the call, the argument and the reason: the library's own
	// message when the library failed.
	Msg    string
	closed bool
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// Is reports fs.ErrClosed for calls on a closed Mapping; everything else
// is matched through the errno.
func (e *Error) Is(target error) bool { return e.closed && target == fs.ErrClosed }

func bindingError(op string, errno syscall.Errno, format string, args ...any) error {
	return &Error{Op: op, Errno: errno, Msg: op + ": " + fmt.Sprintf(format, args...)}
}

func closedError(op string) error {
	return &Error{Op: op, Errno: syscall.EBADF, Msg: op + ": the mapping is closed", closed: true}
}
