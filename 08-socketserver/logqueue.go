package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logQueue stands between the server's log and the real stdout, so that
// a log nobody reads (a paused "| less", a stuck log shipper) costs log
// lines, never service or shutdown.
//
// Write copies the line into a queue and returns at once; when the queue
// is full the line is dropped and counted. One goroutine writes the
// queued lines out. When it can write again after drops, it first says
// how many lines were lost.
type logQueue struct {
	out     io.Writer
	lines   chan []byte
	dropped atomic.Int64
	done    chan struct{} // closed when the writing goroutine has finished

	mu     sync.Mutex // guards closed, so no Write sends on a closed channel
	closed bool
}

// logQueueLines is how many lines wait for a slow stdout before new
// ones are dropped.
const logQueueLines = 1024

func newLogQueue(out io.Writer) *logQueue {
	q := &logQueue{out: out, lines: make(chan []byte, logQueueLines), done: make(chan struct{})}
	go q.writeOut()
	return q
}

// Write queues a copy of p (a log.Logger hands over one whole line per
// call) and never blocks. It never fails either: a lost log line is not
// the caller's problem.
func (q *logQueue) Write(p []byte) (int, error) {
	line := append([]byte(nil), p...)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return len(p), nil
	}
	select {
	case q.lines <- line:
	default:
		q.dropped.Add(1)
	}
	return len(p), nil
}

// writeOut writes the queued lines out. The lines waiting together go out
// in one Write: when clients come and go in a crowd, many lines cost one
// system call.
func (q *logQueue) writeOut() {
	defer close(q.done)
	var batch []byte
	for line := range q.lines {
		batch = append(batch[:0], line...)
	gather:
		for len(batch) < logBatch {
			select {
			case line, ok := <-q.lines:
				if !ok {
					break gather
				}
				batch = append(batch, line...)
			default:
				break gather
			}
		}
		q.reportDrops()
		q.out.Write(batch)
	}
	q.reportDrops()
}

// logBatch is how many bytes of queued lines one Write takes at most.
const logBatch = 64 << 10

// reportDrops writes how many lines were dropped since it last did.
func (q *logQueue) reportDrops() {
	if n := q.dropped.Swap(0); n > 0 {
		fmt.Fprintf(q.out, "log: %d lines dropped while the log was not being read\n", n)
	}
}

// close stops taking lines and waits until the queued ones are written,
// but not past deadline: a stdout that never drains cannot hold up the
// exit. It reports whether everything got out.
func (q *logQueue) close(deadline time.Time) bool {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-q.done:
		return true
	case <-timer.C:
		return false
	}
}
