// The errors of 01-create, each turned into the line a learner sees.

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// explain turns an error into the line a learner sees: what the system
// said, what it means here, and where docs/errors.md says more.
func explain(err error) string {
	switch {
	case isErrno(err, syscall.EAFNOSUPPORT):
		return fmt.Sprintf("%v: this system does not offer that address family (see docs/errors.md#eafnosupport)", err)
	case isErrno(err, syscall.EPERM):
		return fmt.Sprintf("%v: only a privileged process may do this; raw sockets need root or CAP_NET_RAW (see docs/errors.md#eperm)", err)
	case isErrno(err, syscall.EACCES):
		return fmt.Sprintf("%v: only a privileged process may do this; on Windows raw sockets need an administrator (see docs/errors.md#eacces)", err)
	case isErrno(err, syscall.EPROTONOSUPPORT):
		return fmt.Sprintf("%v: that protocol does not go with this family and type (TCP is SOCK_STREAM, UDP is SOCK_DGRAM)", err)
	case isErrno(err, syscall.ESOCKTNOSUPPORT) || isErrno(err, syscall.EPROTOTYPE):
		return fmt.Sprintf("%v: this family has no sockets of that type", err)
	case isErrno(err, syscall.EINVAL):
		return fmt.Sprintf("%v: the kernel refused an argument, such as a socket type that does not exist", err)
	case isErrno(err, syscall.ENOPROTOOPT):
		return fmt.Sprintf("%v: this platform has no such option at that level", err)
	case isErrno(err, syscall.EMFILE):
		return fmt.Sprintf("%v: this process has too many files and sockets open; close some or raise the limit (see docs/errors.md#emfile)", err)
	}
	return err.Error()
}

// errCode is the symbolic name and the number of the error inside err,
// the two things the article's Python example prints.
func errCode(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s (errno %d)", errName(err), int(errno))
	}
	return errName(err)
}
