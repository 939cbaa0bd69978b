package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// is reports whether err is errno. Windows reports socket errors with
// Winsock's own numbers, which are not the syscall.E* values Go defines
// there, so is checks that number too (errors_windows.go has them).
func is(err error, errno syscall.Errno) bool {
	if errors.Is(err, errno) {
		return true
	}
	wsa, ok := winsock[errno]
	return ok && errors.Is(err, wsa)
}

// isTemporary reports an Accept error that says nothing about the
// listener itself, so the loop should pause and try again: the process
// or the system is out of descriptors or buffers for now, or a client
// hung up before we took it. (Go already retries that last one itself on
// Unix; Windows may report it as a reset.)
func isTemporary(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET,
	} {
		if is(err, errno) {
			return true
		}
	}
	return false
}

// isReset reports a client that aborted the connection (RST) instead of
// closing it. Writing to a connection the client has reset fails with
// EPIPE, "broken pipe", which means the same thing here.
func isReset(err error) bool {
	return is(err, syscall.ECONNRESET) || is(err, syscall.ECONNABORTED) || is(err, syscall.EPIPE)
}

// checkHostPort reports an address that is not host:port, such as 9005,
// with a hint that shows the form, before Listen or Dial says it less
// clearly.
func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "9005"
		if _, e := strconv.Atoi(addr); e == nil {
			port = addr
		}
		return fmt.Errorf("%w (write host:port, e.g. 127.0.0.1:%s or :%s)", err, port, port)
	}
	return nil
}

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case is(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case is(err, syscall.EACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case is(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, syscall.EPIPE):
		return fmt.Sprintf("%v: the peer is gone and cannot receive any more (see docs/errors.md#epipe)", err)
	case errors.Is(err, syscall.ENFILE):
		// Not this process's limit but the whole system's table of open
		// files: ulimit -n does not help; other programs must close some.
		return fmt.Sprintf("%v: the whole system is out of open files, not just this program; it recovers when programs close some (see docs/errors.md#emfile)", err)
	case is(err, syscall.EMFILE):
		return fmt.Sprintf("%v: out of file descriptors; close some, or raise the limit (ulimit -n) (see docs/errors.md#emfile)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded) or a dial that gave up. Timeout is the one
// method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
