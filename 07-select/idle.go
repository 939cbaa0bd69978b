//go:build linux || darwin

package main

import (
	"container/list"
	"fmt"
	"time"
)

// The idle list: non-blocking sockets have no deadlines, so the loop
// keeps its clients in a list ordered by last activity. The one at the
// back is always the next to time out, so the poller's timeout is simply
// its deadline, and a timeout costs nothing per wait.
type idleState struct {
	// byAge orders connections by last activity, most recent in front,
	// so the next one to time out is always at the back.
	byAge *list.List
	// draining holds connections whose write side is shut, oldest first.
	draining *list.List
}

// touch records activity: c moves to the front of the age list.
func (l *eventLoop) touch(c *conn) {
	if c.shut {
		return // on the draining list, with its own deadline
	}
	c.lastActive = l.now
	l.byAge.MoveToFront(c.age)
}

// expireIdle tells clients that have been silent for -idle-timeout why
// they are closed. A client already being closed that stays stuck for
// another -idle-timeout (it never reads) is cut off.
func (l *eventLoop) expireIdle(now time.Time) {
	// Connections that got FIN and did not close in time are closed.
	for e := l.draining.Front(); e != nil; e = l.draining.Front() {
		c := e.Value.(*conn)
		if now.Before(c.drainUntil) {
			break
		}
		l.closeConn(c)
	}
	for e := l.byAge.Back(); e != nil; e = l.byAge.Back() {
		c := e.Value.(*conn)
		if now.Sub(c.lastActive) < l.cfg.idleTimeout {
			return
		}
		if c.closing {
			fmt.Fprintf(l.out, "client %s did not take its last line, closed\n", c.peer)
			l.closeConn(c)
			continue
		}
		fmt.Fprintf(l.out, "client %s idle, closed\n", c.peer)
		c.closing = true
		c.out = append(c.out, fmt.Sprintf("bye: idle for %v, closing\n", l.cfg.idleTimeout)...)
		l.touch(c)
		l.flush(c)
	}
}

// timeout is how long the poller may sleep: until the next idle
// deadline, accept retry or the end of the grace period; for ever if
// there is none. An idle server sleeps (in the kernel, or parked in Go's
// poller) and uses no CPU.
func (l *eventLoop) timeout(now time.Time) time.Duration {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if e := l.byAge.Back(); e != nil {
		consider(e.Value.(*conn).lastActive.Add(l.cfg.idleTimeout))
	}
	if e := l.draining.Front(); e != nil {
		consider(e.Value.(*conn).drainUntil)
	}
	consider(l.retryAt)
	if l.stopping {
		consider(l.graceEnd)
	}
	if next.IsZero() {
		return -1
	}
	return max(next.Sub(now), 0)
}
