//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// listenBacklog listens on addr with a queue of backlog connections.
//
// net.Listen always asks for the system's maximum, and a
// ListenConfig.Control function runs before bind, too early to call
// listen. So this listens first, then reaches the socket through
// SyscallConn and calls listen again with the length we want.
func listenBacklog(ctx context.Context, addr string, backlog int) (net.Listener, error) {
	if backlog < 1 {
		return nil, fmt.Errorf("%w: %d", errBadBacklog, backlog)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("reach the listener's socket: %w", err)
	}
	// Control lends the descriptor for the length of the callback; the
	// callback cannot return an error, so it hands it out in listenErr.
	var listenErr error
	err = raw.Control(func(fd uintptr) {
		listenErr = relisten(fd, backlog)
	})
	if err = errors.Join(err, listenErr); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set backlog %d on %s: %w", backlog, ln.Addr(), err)
	}
	return ln, nil
}

// queueDepth connects clients to addr one after another, each within
// timeout, and never reads or accepts: it counts how many get in. The
// clients stay connected until it returns, so each one takes a place
// in the queue.
func queueDepth(ctx context.Context, addr string, limit int, timeout time.Duration) (int, error) {
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dialer := net.Dialer{Timeout: timeout}
	for len(clients) < limit {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() == nil && cannotGetIn(err) {
				return len(clients), nil
			}
			return len(clients), fmt.Errorf("client %d: %w", len(clients)+1, err)
		}
		clients = append(clients, conn)
	}
	return len(clients), nil
}
