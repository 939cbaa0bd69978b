package main

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// logQueue is the server's log: an io.Writer that never makes the event
// loop wait. Each line is queued, and one goroutine writes the queue to
// stdout.
//
// Why: the loop must wait for nothing but readiness, and writing to
// stdout can block. When stdout is a pipe that nobody reads (a paused
// `| less`, a stuck log shipper), the pipe fills up and the next write
// waits until someone reads: a loop that logs straight to stdout would
// stop serving every client, and stop shutting down, the moment its log
// is not read. With the queue, a reader that stops costs log lines,
// never service: when the queue is full, a new line is dropped and
// counted, and the count is written as soon as stdout moves again.
type logQueue struct {
	out     io.Writer
	lines   chan []byte   // the queue: lines waiting to be written to out
	dropped atomic.Int64  // lines dropped since the count was last written
	stop    chan struct{} // closed by close: write what is queued, then end
	done    chan struct{} // closed when the writing goroutine has ended
	linger  time.Duration // how long a line waits for others to share its Write
}

// logQueueLines is how many lines may wait for stdout before new ones are
// dropped. The server's lines are short (under 200 bytes), so a full
// queue holds a few hundred kilobytes at most.
const logQueueLines = 1024

// logFlushFloor is how long close waits for stdout when the shutdown's
// deadline has already passed (with -grace 0, say): time enough for a
// stdout that is being read to take the last lines.
const logFlushFloor = 100 * time.Millisecond

// newLogQueue starts the goroutine that writes the queued lines to out.
func newLogQueue(out io.Writer) *logQueue {
	q := &logQueue{
		out:    out,
		lines:  make(chan []byte, logQueueLines),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		linger: logLinger,
	}
	go q.writeOut()
	return q
}

// Write queues a copy of p and returns at once. The loop writes each
// log line with one call. If the queue is full, the line is dropped and
// counted.
func (q *logQueue) Write(p []byte) (int, error) {
	select {
	case q.lines <- bytes.Clone(p):
	default:
		q.dropped.Add(1)
	}
	return len(p), nil
}

// writeOut writes the queued lines to out until close is called and the
// queue is empty.
func (q *logQueue) writeOut() {
	defer close(q.done)
	var batch []byte
	for {
		select {
		case line := <-q.lines:
			batch = q.write(batch, line)
		case <-q.stop:
			for {
				select {
				case line := <-q.lines:
					batch = q.write(batch, line)
				default:
					return
				}
			}
		}
	}
}

// logLinger is how long a line waits for others to share its Write: long
// enough to gather a crowd's lines, too short for a reader to notice.
const logLinger = 5 * time.Millisecond

// logBatch is how many bytes of queued lines one Write takes at most.
const logBatch = 64 << 10

// write writes line in one Write with the lines queued behind it and
// those that arrive within q.linger (up to logBatch bytes). When clients
// come and go by the thousand, each would otherwise cost a system call
// for each of its lines. Once close is called, nothing waits: the batch
// goes out at once. Before the lines goes the count of those dropped
// since the last Write, if any were. A line is dropped only when the
// queue is full, so after any drop there are queued lines left to write:
// the count is never lost. write returns batch, emptied, to be used
// again.
func (q *logQueue) write(batch, line []byte) []byte {
	if n := q.dropped.Swap(0); n > 0 {
		batch = fmt.Appendf(batch, "log: %d lines dropped while the log was not being read\n", n)
	}
	batch = append(batch, line...)
	linger := time.NewTimer(q.linger)
	defer linger.Stop()
	for len(batch) < logBatch {
		select {
		case line := <-q.lines: // queued already: it always joins
			batch = append(batch, line...)
			continue
		default:
		}
		select {
		case line := <-q.lines:
			batch = append(batch, line...)
			continue
		case <-linger.C:
		case <-q.stop:
		}
		break
	}
	q.out.Write(batch)
	return batch[:0]
}

// close tells the writing goroutine to write what is queued and end, and
// waits for it until deadline (or logFlushFloor, if that is later). It
// returns even if stdout never drains: a log that nobody reads must not
// keep the server from stopping. Nothing may be logged after close.
func (q *logQueue) close(deadline time.Time) {
	close(q.stop)
	wait := time.NewTimer(max(time.Until(deadline), logFlushFloor))
	defer wait.Stop()
	select {
	case <-q.done:
	case <-wait.C:
	}
}
