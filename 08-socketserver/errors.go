// The errors of 08-socketserver, each turned into one line that says
// what happened and what to do.

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// isOutOfDescriptors reports an Accept that failed because the process
// or the system has no descriptor (or buffer) left for a new socket.
func isOutOfDescriptors(err error) bool {
	return isErrno(err, syscall.EMFILE) || isErrno(err, syscall.ENFILE) ||
		isErrno(err, syscall.ENOBUFS) || isErrno(err, syscall.ENOMEM)
}

// isAborted reports a client that reset its connection while it was
// still waiting in the backlog.
func isAborted(err error) bool {
	return isErrno(err, syscall.ECONNABORTED)
}

// isReset reports a connection the peer aborted with RST instead of
// closing it with FIN.
func isReset(err error) bool {
	return isErrno(err, syscall.ECONNRESET)
}

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
	case isReset(err):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case isOutOfDescriptors(err):
		return fmt.Sprintf("%v: the process ran out of file descriptors (see docs/errors.md#emfile)", err)
	case errors.Is(err, errFrameTooLarge):
		return fmt.Sprintf("%v: the other side does not speak this protocol; is it the cmd handler? (see docs/errors.md#emsgsize)", err)
	case errors.Is(err, errFramedReply):
		return fmt.Sprintf("%v: the server speaks frames; give -client the server's -handler, here -handler cmd (see docs/errors.md#emsgsize)", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%v: the connection ended in the middle of a reply (see docs/errors.md#eof)", err)
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

// checkHostPort checks that addr is host:port before any socket is made,
// and says how to write it when it is not: "-addr 9008" is a port alone.
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
