//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// dialWithRcvBuf connects to addr over TCP, with SO_RCVBUF set to size
// before the connection is made. The receive buffer is best set before
// connect: TCP announces its receive window in the handshake.
func dialWithRcvBuf(ctx context.Context, log io.Writer, addr string, size int) (net.Conn, error) {
	dialer := net.Dialer{
		// Control runs after socket() and before connect(), once for
		// each address the dialer tries.
		Control: func(network, address string, c syscall.RawConn) error {
			var setErr error
			err := c.Control(func(fd uintptr) {
				setErr = setsockoptInt(fd, solSocket, soRcvBuf, size)
				fmt.Fprintf(log, "Control(%q, %q) before connect: SO_RCVBUF = %d\n", network, address, size)
			})
			return errors.Join(err, setErr)
		},
	}
	conn, err := dialer.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, nil
}

// readOption reads an int option of a live connection or listener.
// RawConn.Control lends the descriptor for the length of the callback
// and keeps the net package from closing it meanwhile; the callback
// cannot return anything, so the value and the error come out through
// variables.
func readOption(c syscall.Conn, level, opt int) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("reach the socket: %w", err)
	}
	var v int
	var getErr error
	err = raw.Control(func(fd uintptr) {
		v, getErr = getsockoptInt(fd, level, opt)
	})
	if err = errors.Join(err, getErr); err != nil {
		return 0, err
	}
	return v, nil
}
