package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// loadUpper is the load client for lesson 08's default handler, which
// answers each line with the same line in upper case and sends no
// greeting, so lesson 07's load generator (which waits for a greeting and
// counts "OK..." markers) cannot drive it. It keeps the load's shape:
// conns connections open at once, messages round trips on each, one at a
// time, every round trip timed, one summary line in 07's format. It uses
// a goroutine per connection: the client is not what is measured.
//
// 07's load generator starts its clock only after the server's greeting,
// that is once the server has taken the connection in. Lesson 08 sends no
// greeting, so each connection here first makes one untimed round trip
// that plays its part; otherwise a sequential server's backlog wait would
// count as latency for lesson 08 but not for lesson 05.
func loadUpper(ctx context.Context, addr string, conns, messages, size int, stdout io.Writer) error {
	if conns < 1 || messages < 1 || size < 1 {
		return fmt.Errorf("-conns, -messages and -size must be at least 1")
	}
	msg := append(bytes.Repeat([]byte("x"), size-1), '\n')
	want := bytes.ToUpper(msg)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, conns*messages)
		firstErr  error
	)
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, err := converseUpper(ctx, addr, msg, want, messages)
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, mine...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	slices.Sort(latencies)
	fmt.Fprintf(stdout, "conns=%d messages=%d requests=%d seconds=%.3f rps=%.0f p50=%dus p99=%dus\n",
		conns, messages, len(latencies), elapsed.Seconds(),
		float64(len(latencies))/elapsed.Seconds(),
		percentile(latencies, 50).Microseconds(), percentile(latencies, 99).Microseconds())
	return nil
}

// converseUpper runs one connection's round trips and returns their
// latencies. Every step has a deadline, so a stuck server fails the run
// instead of hanging it.
func converseUpper(ctx context.Context, addr string, msg, want []byte, messages int) ([]time.Duration, error) {
	d := net.Dialer{Timeout: time.Minute}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReaderSize(conn, len(want)+16)
	got := make([]time.Duration, 0, messages)
	// Round trip -1 is the untimed hello.
	for i := -1; i < messages; i++ {
		// A sequential server may keep this connection waiting in its
		// backlog for a long time, so the deadline is generous.
		conn.SetDeadline(time.Now().Add(2 * time.Minute))
		sent := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return got, fmt.Errorf("send to %s: %w", addr, err)
		}
		line, err := r.ReadSlice('\n')
		if err != nil {
			return got, fmt.Errorf("read from %s after %d of %d messages: %w", addr, max(i, 0), messages, err)
		}
		if !bytes.Equal(line, want) {
			return got, fmt.Errorf("read from %s: unexpected reply %.40q", addr, line)
		}
		if i >= 0 {
			got = append(got, time.Since(sent))
		}
	}
	return got, nil
}

// percentile returns the value below which pct percent of the sorted
// durations fall (the same definition as lesson 07's load generator).
func percentile(sorted []time.Duration, pct int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*pct+99)/100 - 1
	return sorted[max(i, 0)]
}
