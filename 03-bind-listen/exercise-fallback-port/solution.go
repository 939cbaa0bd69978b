//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
)

// isAddrInUse reports whether err says "address already in use". The
// error from net.Listen is a chain (*net.OpError, *os.SyscallError,
// syscall.Errno); errors.Is walks it. Winsock's number is not Go's
// syscall.EADDRINUSE on Windows, so both are checked.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE)
}

// listenFallback listens on host:port, or on the next port up that is
// free, trying at most tries ports. It returns the listener itself, not
// a port number: a port is only yours while you hold it, and another
// program could take a number you found free and let go.
func listenFallback(log io.Writer, host string, port, tries int) (net.Listener, error) {
	if port < 0 || port > 65535 || tries < 1 || port+tries-1 > 65535 {
		return nil, fmt.Errorf("%w: port %d, tries %d", errBadRange, port, tries)
	}
	// Port 0 asks the kernel for any free port: there is nothing to
	// fall back from, and trying 1, 2, … would mean privileged ports.
	if port == 0 {
		tries = 1
	}
	var lastErr error
	for p := port; p < port+tries; p++ {
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		if !isAddrInUse(err) {
			// Not a busy port: a wrong address or a permission. The
			// next port would fail the same way.
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		lastErr = err
		if p < port+tries-1 {
			fmt.Fprintf(log, "%s is in use, trying %s\n", addr, net.JoinHostPort(host, strconv.Itoa(p+1)))
		}
	}
	last := net.JoinHostPort(host, strconv.Itoa(port+tries-1))
	return nil, fmt.Errorf("%w: %s to %s: %w", errAllInUse, net.JoinHostPort(host, strconv.Itoa(port)), last, lastErr)
}
