//go:build !solution

// Your work: dialWithRcvBuf and readOption. Run the tests with
//
//	go test -tags exercise ./01-create/exercise-dial-options/
//
// They fail until both do what README.md asks.
package main

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// errTODO marks what is not written yet.
var errTODO = errors.New("not written yet: see the TODOs in starter.go")

// The given helpers you will call. This blank assignment only keeps
// linters from calling them unused until your code does; delete it then.
var _, _ = getsockoptInt, setsockoptInt

// dialWithRcvBuf connects to addr over TCP, with SO_RCVBUF set to size
// before the connection is made.
func dialWithRcvBuf(ctx context.Context, log io.Writer, addr string, size int) (net.Conn, error) {
	// TODO: a net.Dialer whose Control function, inside c.Control,
	// calls setsockoptInt(fd, solSocket, soRcvBuf, size) and writes
	//   Control("tcp4", "127.0.0.1:PORT") before connect: SO_RCVBUF = 8192
	// to log (network and address as Control received them, with %q).
	// TODO: return both errors (c.Control's and setsockoptInt's).
	// TODO: DialContext(ctx, "tcp4", addr); wrap its error with addr.
	return nil, errTODO
}

// readOption reads an int option of a live connection or listener.
func readOption(c syscall.Conn, level, opt int) (int, error) {
	// TODO: c.SyscallConn(), then raw.Control(func(fd uintptr) { ... })
	// with getsockoptInt inside; return the value, or either error.
	return 0, errTODO
}
