//go:build !solution

// Your work: listenBacklog and queueDepth. Run the tests with
//
//	go test -tags exercise ./03-bind-listen/exercise-backlog/
//
// They fail until both do what README.md asks.
package main

import (
	"context"
	"errors"
	"net"
	"time"
)

// errTODO marks what is not written yet.
var errTODO = errors.New("not written yet: see the TODOs in starter.go")

// What you will call and return. This blank assignment only keeps
// linters from calling them unused until your code does; delete it then.
var _, _, _ = cannotGetIn, relisten, errBadBacklog

// listenBacklog listens on addr with a queue of backlog connections.
func listenBacklog(ctx context.Context, addr string, backlog int) (net.Listener, error) {
	// TODO: refuse backlog < 1 with errBadBacklog.
	// TODO: listen with net.ListenConfig (Listen(ctx, "tcp", addr)).
	// TODO: reach the socket with ln.(*net.TCPListener).SyscallConn(),
	// and in its Control callback call relisten(fd, backlog). Keep the
	// callback's error; close the listener if anything failed.
	return nil, errTODO
}

// queueDepth connects clients to addr one after another, each within
// timeout, and never reads or accepts: it counts how many get in.
func queueDepth(ctx context.Context, addr string, limit int, timeout time.Duration) (int, error) {
	// TODO: dial with net.Dialer{Timeout: timeout}, keeping every
	// connection open, until limit clients are in or one cannot get in
	// (cannotGetIn(err)); return how many got in.
	// TODO: any other error: return it. Close every client before
	// returning (defer).
	return 0, errTODO
}
