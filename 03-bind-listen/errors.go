// The errors of 03-bind-listen, each turned into one line that says what
// happened and what to do.

package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	switch {
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it, or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's; use 127.0.0.1, or 0.0.0.0 for every interface (see docs/errors.md#eaddrnotavail)", err)
	case isErrno(err, syscall.EACCES):
		return fmt.Sprintf("%v: this port needs special permission (below 1024 on Linux) or is reserved; use a higher port (see docs/errors.md#eacces)", err)
	}
	return err.Error()
}

// checkHostPort checks that addr is host:port before any socket is made,
// and says how to write it when it is not: "-addr 9003" is a port alone.
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
