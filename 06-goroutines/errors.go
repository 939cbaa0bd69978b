// The errors of 06-goroutines, each turned into one line that says what
// happened and what to do.

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case isErrno(err, syscall.EACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case isErrno(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case isErrno(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, syscall.ENFILE):
		// Not this process's limit but the whole system's table of open
		// files: ulimit -n does not help; other programs must close some.
		return fmt.Sprintf("%v: the whole system is out of open files, not just this program; it recovers when programs close some (see docs/errors.md#emfile)", err)
	case isErrno(err, syscall.EMFILE):
		return fmt.Sprintf("%v: the process ran out of file descriptors; it recovers when some are closed, or raise the limit with ulimit -n (see docs/errors.md#emfile)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isReset reports a connection the peer broke off: a reset (RST), a
// write to a peer that has gone (EPIPE), or an aborted connection, which
// is how Windows reports some of the same.
func isReset(err error) bool {
	return isErrno(err, syscall.ECONNRESET) || isErrno(err, syscall.EPIPE) ||
		isErrno(err, syscall.ECONNABORTED)
}

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded) or a dial that gave up. Timeout is the one
// method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

// checkHostPort checks that addr is host:port before any socket is made,
// and says how to write it when it is not: "-addr 9006" is a port alone.
func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := defaultPort
		if addr != "" && strings.Trim(addr, "0123456789") == "" {
			port = addr // the user gave the port and forgot the host
		}
		return fmt.Errorf("%w (write host:port, e.g. 127.0.0.1:%s or :%s)", err, port, port)
	}
	return nil
}
