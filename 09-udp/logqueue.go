package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logQueueLines is how many log lines wait for a slow reader before
// new ones are dropped.
const logQueueLines = 1024

// logQueue is the server's log: a writer that never makes the server
// wait. When stdout is a pipe nobody reads (a paused `| less`, a stuck
// log shipper), a plain write blocks once the pipe's buffer is full,
// and a server that logs each datagram would stop answering. Here
// Write only copies the line into a queue and returns; one goroutine
// writes the queue to the real output. When the queue is full the line
// is dropped and counted, and the count is reported as soon as the
// output moves again.
//
// Each Write is one line: the server writes every line with one call.
type logQueue struct {
	out     io.Writer
	lines   chan []byte
	dropped atomic.Int64
	stop    chan struct{}
	once    sync.Once
	done    chan struct{}
}

// newLogQueue starts the goroutine that writes to out, through a queue
// of size lines.
func newLogQueue(out io.Writer, size int) *logQueue {
	q := &logQueue{
		out:   out,
		lines: make(chan []byte, size),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go q.run()
	return q
}

// Write queues a copy of p and returns at once, never an error: a log
// that cannot keep up costs lines, not service.
func (q *logQueue) Write(p []byte) (int, error) {
	line := append([]byte(nil), p...)
	select {
	case q.lines <- line:
	default:
		q.dropped.Add(1)
	}
	return len(p), nil
}

// run writes the queued lines until Close, then what is left.
func (q *logQueue) run() {
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

// write writes one line; once it has gone through, the output moves
// again, so it is the moment to say what was dropped meanwhile.
func (q *logQueue) write(line []byte) {
	q.out.Write(line)
	q.reportDrops()
}

func (q *logQueue) reportDrops() {
	if n := q.dropped.Swap(0); n > 0 {
		fmt.Fprintf(q.out, "log: %d lines dropped while the log was not being read\n", n)
	}
}

// Close writes what is queued and returns when it is written, or after
// limit, whichever comes first: a reader that never comes back must not
// keep the program from exiting. It reports whether everything was
// written.
func (q *logQueue) Close(limit time.Duration) bool {
	q.once.Do(func() { close(q.stop) })
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-q.done:
		return true
	case <-timer.C:
		return false
	}
}

// logLimit is how many lines about datagrams the log takes in one
// second.
const logLimit = 10

// limitedLog writes at most logLimit lines a second, and counts the
// rest. The first line after a second with skipped lines, and the stop,
// say how many were skipped. So a log line costs about as much as the
// datagram that caused it while datagrams trickle in (73 bytes for a
// 28-byte empty datagram), and a flood of any size costs at most
// logLimit lines a second.
type limitedLog struct {
	w       io.Writer
	second  time.Time // when the current second began
	lines   int       // lines written in it
	skipped int       // lines skipped since the last summary
}

func (l *limitedLog) printf(format string, args ...any) {
	if now := time.Now(); now.Sub(l.second) >= time.Second {
		l.flush()
		l.second, l.lines = now, 0
	}
	if l.lines == logLimit {
		l.skipped++
		return
	}
	l.lines++
	fmt.Fprintf(l.w, format, args...)
}

// flush says how many lines were skipped, if any were.
func (l *limitedLog) flush() {
	if l.skipped > 0 {
		fmt.Fprintf(l.w, "log: %d lines skipped (at most %d a second)\n", l.skipped, logLimit)
		l.skipped = 0
	}
}
