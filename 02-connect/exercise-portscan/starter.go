//go:build !solution

// Your work: the two functions below. Run the tests with
//
//	go test -tags exercise ./02-connect/exercise-portscan/
//
// They fail until both functions do what README.md asks.
package main

import (
	"context"
	"errors"
	"net/netip"
)

// errTODO marks what is not written yet.
var errTODO = errors.New("not written yet: see the TODOs in starter.go")

// What you will call and return. This blank assignment only keeps
// linters from calling them unused until your code does; delete it then.
var _, _, _, _ = classify, checkLoopback, errBadPort, errBadScanner

// checkLoopback returns the address to scan, or an error wrapping
// errNotLoopback.
func checkLoopback(host string) (netip.Addr, error) {
	// TODO: parse host with netip.ParseAddr. A name is not an address:
	// refuse it (wrap errNotLoopback with fmt.Errorf("%w: ...")).
	// TODO: refuse every address whose Unmap().IsLoopback() is false.
	return netip.Addr{}, errTODO
}

// Scan tries every port on host and returns one Result per port, in the
// order of ports.
func (s Scanner) Scan(ctx context.Context, host string, ports []int) ([]Result, error) {
	// TODO: check host with checkLoopback, every port (1 to 65535,
	// else errBadPort), and s.Timeout > 0 and s.Workers >= 1 (else
	// errBadScanner), all BEFORE the first connect.
	// TODO: use s.Dial, or (&net.Dialer{}).DialContext when it is nil.
	// TODO: start s.Workers goroutines that take port indexes from a
	// channel; each attempt gets its own context.WithTimeout(ctx,
	// s.Timeout). A connection that succeeds is Open: close it at once.
	// A failure's state is classify(err).
	// TODO: keep the order of ports in the results; stop and return
	// ctx's error if ctx is cancelled.
	return nil, errTODO
}
