//go:build linux || darwin

package main

import "fmt"

// Back-pressure: a client that sends but never reads its replies would
// make the loop hold every reply for it, without bound. Past maxPending
// unsent bytes the loop stops reading that client, and starts again
// once they drain below resumeBelow.

const (
	maxPending  = 64 << 10 // stop reading a client whose unsent replies reach this
	resumeBelow = 16 << 10 // ... and start again once they drain below this
)

// holdBack stops reading c once too many of its replies wait to be
// sent. The client sends faster than it reads its replies: stop
// reading it until they drain. Its own kernel buffers fill up and its
// writes block, while everybody else is served, and the memory the
// loop holds for it stays bounded. (update drops its read interest.)
func (l *eventLoop) holdBack(c *conn) {
	if len(c.out) < maxPending || c.paused {
		return
	}
	c.paused = true
	if !c.warned {
		c.warned = true
		fmt.Fprintf(l.out, "client %s is not reading its replies; stopped reading it until they drain\n", c.peer)
	}
}

// resume reads c again once its replies have drained below
// resumeBelow. The gap between the two bounds keeps the loop from
// switching read interest on and off for every reply.
func (l *eventLoop) resume(c *conn) {
	if c.paused && len(c.out) < resumeBelow {
		c.paused = false
	}
}
