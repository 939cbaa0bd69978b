//go:build linux || darwin

package main

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	byeShutdown = "bye: server shutting down\n"
	drainTime   = time.Second // after FIN, how long to discard input
)

// shutdownState is what the loop knows about stopping.
type shutdownState struct {
	wake     *waker // Ctrl+C wakes the poller through it
	stopping bool
	graceEnd time.Time
}

// beginShutdown stops accepting and says goodbye to every client. The
// loop goes on until they have all taken their last line, or -grace ends.
func (l *eventLoop) beginShutdown(now time.Time) {
	if l.stopping {
		return
	}
	l.stopping = true
	l.graceEnd = now.Add(l.cfg.grace)
	l.setAccepting(false)
	unix.Close(l.lfd)
	l.lfd = -1
	fmt.Fprintf(l.out, "shutting down: saying bye to %d clients\n", len(l.conns))
	for _, c := range l.conns {
		if c.closing {
			continue // already on its way out
		}
		c.closing = true
		c.out = append(c.out, byeShutdown...)
		l.flush(c)
	}
}

// sayGoodbye ends a client that is closing, once its last reply is
// sent, and reports whether it is still open. A client that has finished
// sending is closed now. One that may still send gets FIN first, and the
// loop reads and discards until it closes too (or drainTime passes):
// closing with unread input would send RST, and the client could lose
// the last line.
func (l *eventLoop) sayGoodbye(c *conn) bool {
	if c.eof {
		l.closeConn(c)
		return false
	}
	if !c.shut {
		c.shut = true
		unix.Shutdown(c.fd, unix.SHUT_WR)
		c.drainUntil = time.Now().Add(drainTime)
		if l.stopping && l.graceEnd.Before(c.drainUntil) {
			c.drainUntil = l.graceEnd
		}
		l.byAge.Remove(c.age)
		c.age = l.draining.PushBack(c)
	}
	return true
}

// closeRemaining closes whatever is left when the loop ends.
func (l *eventLoop) closeRemaining() {
	for _, c := range l.conns {
		if !c.shut {
			fmt.Fprintf(l.out, "client %s did not finish within -grace, closed\n", c.peer)
		}
		l.closeConn(c)
	}
}

// waker is the self-pipe: writing a byte makes the read end readable,
// which wakes the poller from another goroutine.
type waker struct {
	mu     sync.Mutex
	r, w   int
	closed bool
}

func newWaker() (*waker, error) {
	r, w, err := newPipe()
	if err != nil {
		return nil, err
	}
	return &waker{r: r, w: w}, nil
}

// wake is safe to call from any goroutine, even after close.
func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		unix.Write(w.w, []byte{1}) // EAGAIN means it is awake already
	}
}

// drain empties the pipe and reports whether anything was in it.
func (w *waker) drain() (woken bool) {
	var b [64]byte
	for {
		if n, err := unix.Read(w.r, b[:]); n <= 0 || err != nil {
			return woken
		}
		woken = true
	}
}

func (w *waker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	unix.Close(w.r)
	unix.Close(w.w)
}
