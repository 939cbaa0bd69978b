package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// These benchmarks measure; they assert nothing about speed. Run them
// without -race, which slows everything down several times:
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 ./06-goroutines/
//
// Client and server run in this one process, over loopback.

// BenchmarkRequestReply64B keeps a number of clients busy at once, each
// sending 64 bytes and waiting for "OK..." plus those bytes before it
// sends again. One op is one request and its reply.
func BenchmarkRequestReply64B(b *testing.B) {
	for _, conns := range []int{50, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			benchmarkRequestReply(b, conns)
		})
	}
}

func benchmarkRequestReply(b *testing.B, conns int) {
	addr := startQuietServer(b, "-max-conns", strconv.Itoa(conns))
	clients := make([]net.Conn, conns)
	for i := range clients {
		clients[i] = dialBench(b, addr)
	}
	msg := bytes.Repeat([]byte("x"), 64)

	// The clients share out b.N requests between them.
	var taken atomic.Int64
	failed := make(chan error, conns)
	var wg sync.WaitGroup
	b.ReportAllocs()
	cpuBefore, haveCPU := processCPU()
	b.ResetTimer()
	start := time.Now()
	for _, conn := range clients {
		wg.Add(1)
		go func(conn net.Conn) {
			defer wg.Done()
			buf := make([]byte, 4096)
			for taken.Add(1) <= int64(b.N) {
				if _, err := conn.Write(msg); err != nil {
					failed <- err
					return
				}
				// The reply may come in more than one chunk, each
				// with its own "OK...": count the echoed bytes.
				for echoed := 0; echoed < len(msg); {
					n, err := conn.Read(buf)
					if err != nil {
						failed <- err
						return
					}
					echoed += bytes.Count(buf[:n], []byte("x"))
				}
			}
		}(conn)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpuAfter, _ := processCPU()
	close(failed)
	for err := range failed {
		b.Fatal(err)
	}

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	if haveCPU {
		// CPU time of the whole process: the server's goroutines, the
		// clients' goroutines and the Go runtime, user plus system.
		b.ReportMetric(float64(cpuAfter-cpuBefore)/float64(time.Microsecond)/float64(b.N), "cpu-µs/req")
	}
}

// idle remembers the figures of BenchmarkIdleConnectionMemory, which
// measures in its first run only (b.N is 1 there). The framework may
// call it again with a larger b.N to fill -benchtime; those runs report
// the same figures and no time.
var idle struct{ server, client, stack, goroutines float64 }

// BenchmarkIdleConnectionMemory holds 5000 clients connected to the server
// and silent, each greeted, so each has a goroutine waiting in Read. It
// reports how much Go memory each one costs: live heap objects
// (HeapAlloc) plus goroutine stacks (StackInuse), after a GC, compared
// with before they connected. The clients' own net.Conn values live in
// the same heap, so the same is measured first for 5000 bare client
// connections, and subtracted. Memory the kernel keeps for each socket,
// and memory the Go runtime holds but does not use, are not counted.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const n = 5000
	if b.N == 1 {
		// The client side alone: connections to a listener that accepts
		// and closes at once, so the server side holds no Go memory.
		ln, err := nettest.NewLocalListener("tcp4")
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		client := measureIdle(func() []net.Conn {
			conns := make([]net.Conn, n)
			for i := range conns {
				conns[i] = dialPlain(b, ln.Addr().String())
			}
			return conns
		})
		ln.Close()

		// Then the same number of clients, served by this lesson.
		addr := startQuietServer(b, "-max-conns", strconv.Itoa(n))
		served := measureIdle(func() []net.Conn {
			conns := make([]net.Conn, n)
			for i := range conns {
				conns[i] = dialBench(b, addr)
			}
			return conns
		})
		idle.client = float64(client.heap+client.stack) / n
		idle.server = float64(served.heap+served.stack)/n - idle.client
		idle.stack = float64(served.stack) / n
		idle.goroutines = float64(served.goroutines) / n
	}
	for i := 0; i < b.N; i++ {
	}
	b.ReportMetric(0, "ns/op") // the time it took is not the point
	b.ReportMetric(idle.server, "server-B/conn")
	b.ReportMetric(idle.stack, "stack-B/conn")
	b.ReportMetric(idle.client, "client-B/conn")
	b.ReportMetric(idle.goroutines, "goroutines/conn")
}

// growth is what opening some connections added.
type growth struct{ heap, stack, goroutines int64 }

// measureIdle runs open, which opens connections and returns them, and
// reports what they added while all are still open. Then it closes them.
func measureIdle(open func() []net.Conn) growth {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	conns := open()
	// A second GC gives stacks that have grown a chance to shrink back.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	g := growth{
		heap:       int64(after.HeapAlloc) - int64(before.HeapAlloc),
		stack:      int64(after.StackInuse) - int64(before.StackInuse),
		goroutines: int64(runtime.NumGoroutine() - goroutines),
	}
	for _, conn := range conns {
		conn.Close()
	}
	return g
}

// dialPlain connects, or ends the benchmark: past the process's
// descriptor limit (ulimit -n) there is nothing to measure.
func dialPlain(b *testing.B, addr string) net.Conn {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		b.Skipf("cannot open enough connections (raise ulimit -n?): %v", err)
	}
	return conn
}

// dialBench connects, reads the greeting, and gives the connection a
// deadline far enough away for any benchmark run.
func dialBench(b *testing.B, addr string) net.Conn {
	conn := dialPlain(b, addr)
	b.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(5 * time.Minute)); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, len(greetingLine)+1)); err != nil {
		b.Fatal(err)
	}
	return conn
}

// startQuietServer runs the program like startServer, but keeps none of
// its log after the address, so the log takes no memory or time from the
// figures.
func startQuietServer(b *testing.B, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &firstLine{ready: make(chan struct{})}
	done := make(chan error, 1)
	// Every client comes from 127.0.0.1: no cap per address.
	args = append([]string{"-addr", "127.0.0.1:0", "-max-conns-per-ip", "0"}, args...)
	go func() { done <- run(ctx, args, nil, log, io.Discard) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	select {
	case <-log.ready:
	case err := <-done:
		b.Fatal("server ended:", err)
	}
	addr, ok := strings.CutPrefix(log.line, "listening on ")
	if !ok {
		b.Fatalf("first line should give the address, got %q", log.line)
	}
	return addr
}

// firstLine is an io.Writer that keeps the first line written to it and
// discards everything after.
type firstLine struct {
	mu    sync.Mutex
	part  string
	line  string
	ready chan struct{} // closed when line is complete
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.line == "" {
		w.part += string(p)
		if line, _, ok := strings.Cut(w.part, "\n"); ok {
			w.line = line
			close(w.ready)
		}
	}
	return len(p), nil
}
