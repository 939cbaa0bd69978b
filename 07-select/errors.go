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

// isReset reports a peer that aborted the connection (RST) instead of
// closing it. Writing to a connection the peer has reset fails with
// EPIPE, "broken pipe", which means the same thing here.
func isReset(err error) bool {
	return is(err, syscall.ECONNRESET) || is(err, syscall.ECONNABORTED) || is(err, syscall.EPIPE)
}

// checkHostPort reports an address that is not host:port, such as 9007,
// with a hint that shows the form, before listening or dialling says it
// less clearly.
func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "9007"
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
	case errors.Is(err, syscall.ENFILE):
		// Not this process's limit but the whole system's table of open
		// files: ulimit -n does not help; other programs must close some.
		return fmt.Sprintf("%v: the whole system is out of open files, not just this program; it recovers when programs close some (see docs/errors.md#emfile)", err)
	case is(err, syscall.EMFILE):
		return fmt.Sprintf("%v: out of file descriptors; raise the limit (ulimit -n) or use fewer connections (see docs/errors.md#emfile)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// errNoProgress is the load generator's timeout: nothing happened on any
// connection for -idle-timeout.
var errNoProgress = errors.New("no progress")

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded), a dial that gave up, or a load run that
// stalled. Timeout is the one method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errNoProgress) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}
