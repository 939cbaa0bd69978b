package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logQueueLines is how many log lines may wait for a slow stdout.
const logQueueLines = 1024

// logQueue is the server's log: an io.Writer that never blocks.
//
// Writing to stdout can block. When stdout is a pipe that nobody reads
// (a paused `| less`, a stuck log shipper), a plain write waits once the
// pipe's buffer is full, and a server that logs on its serving path
// stops serving, and stops answering Ctrl+C, with it. So Write only puts
// a copy of the line in a queue and returns at once; one goroutine
// writes the queued lines to the real stdout. When the queue is full the
// line is dropped and counted, and when the log moves again the count is
// written first. A stuck log costs log lines, never service or shutdown.
type logQueue struct {
	out     io.Writer
	lines   chan []byte
	dropped atomic.Int64
	stop    chan struct{} // closed by close: write what is queued, then end
	once    sync.Once
	done    chan struct{} // closed when the writing goroutine has ended
}

// newLogQueue starts the goroutine that writes the queued lines to out.
func newLogQueue(out io.Writer) *logQueue {
	q := &logQueue{
		out:   out,
		lines: make(chan []byte, logQueueLines),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go q.writeLines()
	return q
}

// Write queues a copy of p (one log line) and returns at once. If the
// queue is full, the line is dropped and counted instead.
func (q *logQueue) Write(p []byte) (int, error) {
	line := append([]byte(nil), p...) // the caller may reuse p
	select {
	case q.lines <- line:
	default:
		q.dropped.Add(1)
	}
	return len(p), nil
}

// writeLines writes each queued line to out until close asks it to end;
// then it writes what is still queued and ends.
func (q *logQueue) writeLines() {
	defer close(q.done)
	for {
		select {
		case line := <-q.lines:
			q.write(line)
		case <-q.stop:
			for {
				select {
				case line := <-q.lines:
					q.write(line)
				default:
					q.reportDrops()
					return
				}
			}
		}
	}
}

// write writes one line, after saying how many were dropped before it.
func (q *logQueue) write(line []byte) {
	q.reportDrops()
	q.out.Write(line)
}

func (q *logQueue) reportDrops() {
	if n := q.dropped.Swap(0); n > 0 {
		fmt.Fprintf(q.out, "log: %d lines dropped while the log was not being read\n", n)
	}
}

// close writes what is still queued, waiting until deadline at most, and
// reports whether it all got out. A stdout that never drains keeps the
// writing goroutine blocked, but no longer holds up the caller.
func (q *logQueue) close(deadline time.Time) bool {
	q.once.Do(func() { close(q.stop) })
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-q.done:
		return true
	case <-timer.C:
		return false
	}
}
