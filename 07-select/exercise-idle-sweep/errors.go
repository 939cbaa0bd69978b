// The errors of exercise-idle-sweep, each turned into one line that says what
// happened and what to do.

package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	switch {
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.EMFILE) || isErrno(err, syscall.ENFILE):
		return fmt.Sprintf("%v: out of file descriptors; raise the limit with ulimit -n (see docs/errors.md#emfile)", err)
	}
	return err.Error()
}

// checkHostPort checks that addr is host:port before any socket is made,
// and says how to write it when it is not: "-addr 9007" is a port
// alone.
func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "9007"
		if addr != "" && strings.Trim(addr, "0123456789") == "" {
			port = addr // the user gave the port and forgot the host
		}
		return fmt.Errorf("%w (write host:port, e.g. 127.0.0.1:%s or :%s)", err, port, port)
	}
	return nil
}
