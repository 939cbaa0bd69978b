package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// checkHostPort reports an address that is not host:port, such as 9009,
// with a hint that shows the form, before Listen or Dial says it less
// clearly.
func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "9009"
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
	case errors.Is(err, errNotFourBytes):
		return fmt.Sprintf("%v: is that a time server, speaking this protocol?", err)
	case isErrno(err, syscall.EMSGSIZE):
		return fmt.Sprintf("%v: a UDP datagram carries at most 65507 bytes over IPv4, and the system may allow fewer (see docs/errors.md#emsgsize)", err)
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already uses that UDP port; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case isErrno(err, syscall.EACCES):
		return fmt.Sprintf("%v: ports below 1024 (RFC 868's port is 37) need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case isErrno(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: the server's host says nothing receives on that UDP port; is the server running? (see docs/errors.md#econnrefused)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time; is a time server running there? (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed (os.ErrDeadlineExceeded) or
// another timeout. Timeout is the one method of net.Error that is not
// deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
