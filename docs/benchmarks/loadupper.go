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
//
// With a duration, it measures a steady load as 07's generator does with
// -duration: every connection makes its untimed round trip first, then
// it prints "steady conns=N", and every connection makes round trips for
// duration; only those that start and finish in that time count. The
// connections are closed after the summary line.
func loadUpper(ctx context.Context, addr string, conns, messages, size int, duration time.Duration, stdout io.Writer) error {
	if conns < 1 || messages < 1 || size < 1 {
		return fmt.Errorf("-conns, -messages and -size must be at least 1")
	}
	if duration < 0 {
		return fmt.Errorf("-duration must not be negative")
	}
	msg := append(bytes.Repeat([]byte("x"), size-1), '\n')
	want := bytes.ToUpper(msg)
	if duration > 0 {
		return loadUpperSteady(ctx, addr, conns, msg, want, duration, stdout)
	}

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
	printSummary(stdout, conns, messages, latencies, elapsed)
	return nil
}

// loadUpperSteady is loadUpper's timed steady phase.
func loadUpperSteady(ctx context.Context, addr string, conns int, msg, want []byte, duration time.Duration, stdout io.Writer) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		open     []*upperConn
		firstErr error
	)
	defer func() {
		for _, c := range open {
			c.close()
		}
	}()
	// Every connection is opened and has made its untimed round trip
	// before the phase begins.
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialUpper(ctx, addr, msg, want, 0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			open = append(open, c)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// stdout is written at once (os.Stdout has no buffer), so a program
	// reading it through a pipe sees this line now.
	if _, err := fmt.Fprintf(stdout, "steady conns=%d\n", conns); err != nil {
		return err
	}
	end := time.Now().Add(duration)
	var latencies []time.Duration
	for _, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var err error
			for {
				var took time.Duration
				took, err = c.roundTrip(msg, want, len(mine), 0)
				// A round trip that ends after the phase is not counted,
				// and ends this connection's part.
				if err != nil || time.Now().After(end) {
					break
				}
				mine = append(mine, took)
			}
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, mine...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	printSummary(stdout, conns, (len(latencies)+conns/2)/conns, latencies, duration)
	return nil
}

// printSummary prints the one line of 07's load generator.
func printSummary(stdout io.Writer, conns, messages int, latencies []time.Duration, elapsed time.Duration) {
	slices.Sort(latencies)
	fmt.Fprintf(stdout, "conns=%d messages=%d requests=%d seconds=%.3f rps=%.0f p50=%dus p99=%dus\n",
		conns, messages, len(latencies), elapsed.Seconds(),
		float64(len(latencies))/elapsed.Seconds(),
		percentile(latencies, 50).Microseconds(), percentile(latencies, 99).Microseconds())
}

// converseUpper runs one connection's round trips and returns their
// latencies. Every step has a deadline, so a stuck server fails the run
// instead of hanging it.
func converseUpper(ctx context.Context, addr string, msg, want []byte, messages int) ([]time.Duration, error) {
	c, err := dialUpper(ctx, addr, msg, want, messages)
	if err != nil {
		return nil, err
	}
	defer c.close()
	got := make([]time.Duration, 0, messages)
	for i := 0; i < messages; i++ {
		took, err := c.roundTrip(msg, want, i, messages)
		if err != nil {
			return got, err
		}
		got = append(got, took)
	}
	return got, nil
}

// upperConn is one connection of the load client.
type upperConn struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	stop func() bool // ends the watch that cancels conn with the context
}

// dialUpper connects and makes the untimed round trip that stands in for
// a greeting; messages is as in roundTrip.
func dialUpper(ctx context.Context, addr string, msg, want []byte, messages int) (*upperConn, error) {
	d := net.Dialer{Timeout: time.Minute}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &upperConn{addr: addr, conn: conn, r: bufio.NewReaderSize(conn, len(want)+16)}
	c.stop = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	if _, err := c.roundTrip(msg, want, 0, messages); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// roundTrip makes round trip number done+1 and times it; messages is how
// many there are to make (0 with a timed phase), for the error message.
func (c *upperConn) roundTrip(msg, want []byte, done, messages int) (time.Duration, error) {
	took, err := c.exchange(msg, want)
	if err != nil {
		if messages > 0 {
			return 0, fmt.Errorf("read from %s after %d of %d messages: %w", c.addr, done, messages, err)
		}
		return 0, fmt.Errorf("read from %s after %d messages: %w", c.addr, done, err)
	}
	return took, nil
}

// exchange sends msg and reads the reply, which must be want.
func (c *upperConn) exchange(msg, want []byte) (time.Duration, error) {
	// A sequential server may keep this connection waiting in its
	// backlog for a long time, so the deadline is generous.
	c.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	sent := time.Now()
	if _, err := c.conn.Write(msg); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(line, want) {
		return 0, fmt.Errorf("unexpected reply %.40q", line)
	}
	return time.Since(sent), nil
}

func (c *upperConn) close() {
	c.stop()
	c.conn.Close()
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
