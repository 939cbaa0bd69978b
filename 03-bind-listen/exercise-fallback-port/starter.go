//go:build !solution

// Your work: isAddrInUse and listenFallback. Run the tests with
//
//	go test -tags exercise ./03-bind-listen/exercise-fallback-port/
//
// They fail until both do what README.md asks.
package main

import (
	"errors"
	"io"
	"net"
)

// errTODO marks what is not written yet.
var errTODO = errors.New("not written yet: see the TODOs in starter.go")

// What you will call and return. This blank assignment only keeps
// linters from calling them unused until your code does; delete it then.
var _, _ = isAddrInUse, errBadRange

// isAddrInUse reports whether err says "address already in use".
func isAddrInUse(err error) bool {
	// TODO: errors.Is with syscall.EADDRINUSE, and with wsaEADDRINUSE
	// for Windows. Never compare the message text.
	return false
}

// listenFallback listens on host:port, or on the next port up that is
// free, trying at most tries ports.
func listenFallback(log io.Writer, host string, port, tries int) (net.Listener, error) {
	// TODO: refuse port < 0, port > 65535, tries < 1, and a last port
	// (port+tries-1) above 65535 with errBadRange, before any bind.
	// TODO: for each port, net.Listen("tcp", net.JoinHostPort(...)).
	// Success: return the listener. In use, and not the last try:
	// write "<addr> is in use, trying <next addr>\n" to log and go on.
	// Any other error: return it at once, wrapped.
	// TODO: all in use: wrap errAllInUse AND the last error.
	return nil, errTODO
}
