//go:build exercise || solution

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken scanner fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestRefusesEveryTargetThatIsNotLoopbackWithoutConnecting(t *testing.T) {
	for _, host := range []string{
		"192.0.2.1",        // another machine (a documentation address)
		"10.0.0.1",         // a private network is still other machines
		"0.0.0.0",          // "any address" is not loopback
		"::",               // nor is its IPv6 form
		"2001:db8::1",      // another machine, IPv6
		"localhost",        // a name: it could resolve to anything
		"127.0.0.1.nip.io", // a name that looks like loopback
		"",
	} {
		t.Run(host, func(t *testing.T) {
			rec := &recorder{}
			s := Scanner{Timeout: time.Second, Workers: 4, Dial: rec.dial}
			results, err := s.Scan(context.Background(), host, []int{22, 80, 443})
			require.Error(t, err)
			assert.True(t, errors.Is(err, errNotLoopback), "want errNotLoopback, got %v", err)
			assert.Nil(t, results)
			assert.Zero(t, rec.calls(), "a refused target must not see a single connect attempt")
		})
	}
}

func TestRefusalHappensBeforeAnyConnectionReachesTheTarget(t *testing.T) {
	// On Linux and macOS a connect to 0.0.0.0 reaches this machine, so a
	// scanner that dialled before checking would reach this listener.
	// Here the scanner uses its default dialer, not a test one.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	s := Scanner{Timeout: time.Second, Workers: 1}
	_, err = s.Scan(context.Background(), "0.0.0.0", []int{port})
	assert.True(t, errors.Is(err, errNotLoopback), "want errNotLoopback, got %v", err)

	// Nothing may arrive. A short accept deadline is the only way to
	// check that; a connect that had happened would already be queued.
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(100*time.Millisecond)))
	conn, err := ln.Accept()
	if err == nil {
		conn.Close()
	}
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "no connection should have reached the listener, got %v", err)
}

func TestAcceptsEveryLoopbackForm(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			ip, err := checkLoopback(host)
			require.NoError(t, err)
			assert.True(t, ip.IsValid())
		})
	}
}

func TestFindsOpenAndClosedPortsAndKeepsTheirOrder(t *testing.T) {
	open1, open2, open3 := listen(t), listen(t), listen(t)
	closed1, closed2 := closedPort(t), closedPort(t)
	ports := []int{closed1, open2, open1, closed2, open3}

	rec := &recorder{}
	s := Scanner{Timeout: wait, Workers: 2, Dial: rec.dial}
	results := scan(t, s, "127.0.0.1", ports)

	require.Len(t, results, len(ports))
	want := []State{Closed, Open, Open, Closed, Open}
	for i, r := range results {
		assert.Equal(t, ports[i], r.Port, "result %d should be for the %d-th port asked", i, i)
		assert.Equal(t, want[i], r.State, "port %d: %v", r.Port, r.Err)
	}
	assert.Equal(t, len(ports), rec.calls(), "one connect attempt per port")
}

func TestScansIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	results := scan(t, Scanner{Timeout: wait, Workers: 1}, "::1", []int{port})
	require.Len(t, results, 1)
	assert.Equal(t, Open, results[0].State, "%v", results[0].Err)
}

func TestClosesEveryConnectionItOpens(t *testing.T) {
	ports := []int{listen(t), listen(t), listen(t), closedPort(t)}
	rec := &recorder{}
	scan(t, Scanner{Timeout: wait, Workers: 2, Dial: rec.dial}, "127.0.0.1", ports)
	assert.Equal(t, 3, rec.opened(), "three ports are open")
	assert.Equal(t, rec.opened(), rec.closed(), "every connection the scanner opened must be closed")
}

func TestTriesUpToWorkersPortsAtOnceAndNeverMore(t *testing.T) {
	const workers = 3
	// Each fake connect waits until `workers` attempts are under way at
	// the same time (or its own deadline passes). A scanner that tries
	// one port at a time never gets there, and reports Filtered.
	rec := &recorder{}
	full := make(chan struct{})
	var once sync.Once
	rec.fake = func(ctx context.Context, inFlight int) (net.Conn, error) {
		if inFlight == workers {
			once.Do(func() { close(full) })
		}
		select {
		case <-full:
			c1, c2 := net.Pipe()
			c2.Close()
			return c1, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s := Scanner{Timeout: 500 * time.Millisecond, Workers: workers, Dial: rec.dial}
	results := scan(t, s, "127.0.0.1", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})

	for _, r := range results {
		assert.Equal(t, Open, r.State, "port %d: all attempts should run %d at a time", r.Port, workers)
	}
	assert.Equal(t, workers, rec.maxInFlight(), "at most Workers connects may be under way at once")
}

func TestEachPortGetsItsOwnTimeoutAndSilenceIsFiltered(t *testing.T) {
	const timeout = 100 * time.Millisecond
	// A fake connect that never answers, like a firewall that drops
	// packets: it returns only when its context ends. It notes whether
	// each attempt had a deadline, and how far away it was.
	rec := &recorder{}
	var mu sync.Mutex
	var left []time.Duration
	rec.fake = func(ctx context.Context, _ int) (net.Conn, error) {
		dl, ok := ctx.Deadline()
		mu.Lock()
		if ok {
			left = append(left, time.Until(dl))
		}
		mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	// One worker: if the timeout were for the whole scan instead of
	// each port, the second and third ports would get no time at all.
	s := Scanner{Timeout: timeout, Workers: 1, Dial: rec.dial}
	results := scan(t, s, "127.0.0.1", []int{1, 2, 3})

	for _, r := range results {
		assert.Equal(t, Filtered, r.State, "port %d: a silent port is filtered: %v", r.Port, r.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, left, 3, "every connect attempt needs a deadline")
	for i, d := range left {
		assert.True(t, d > 0 && d <= timeout, "attempt %d had %v left; want its own %v", i+1, d, timeout)
	}
}

func TestRejectsBadPortsAndSettingsBeforeConnecting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     Scanner
		ports []int
		want  error
	}{
		{"port 0", Scanner{Timeout: time.Second, Workers: 1}, []int{80, 0}, errBadPort},
		{"port 65536", Scanner{Timeout: time.Second, Workers: 1}, []int{65536}, errBadPort},
		{"negative port", Scanner{Timeout: time.Second, Workers: 1}, []int{-1}, errBadPort},
		{"no timeout", Scanner{Workers: 1}, []int{80}, errBadScanner},
		{"no workers", Scanner{Timeout: time.Second}, []int{80}, errBadScanner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			tc.s.Dial = rec.dial
			_, err := tc.s.Scan(context.Background(), "127.0.0.1", tc.ports)
			assert.True(t, errors.Is(err, tc.want), "want %v, got %v", tc.want, err)
			assert.Zero(t, rec.calls(), "nothing may be tried before everything is checked")
		})
	}
}

func TestCancellingTheContextStopsTheScan(t *testing.T) {
	started := make(chan struct{}, 100)
	rec := &recorder{}
	rec.fake = func(ctx context.Context, _ int) (net.Conn, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A timeout of a minute: only the cancel can end this scan in time.
	s := Scanner{Timeout: time.Minute, Workers: 2, Dial: rec.dial}
	done := make(chan error, 1)
	go func() {
		_, err := s.Scan(ctx, "127.0.0.1", []int{1, 2, 3, 4, 5, 6})
		done <- err
	}()

	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the scan ended before it tried a port: %v", err)
	case <-time.After(wait):
		t.Fatal("the scan never tried a port")
	}
	cancel() // what Ctrl+C does
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, context.Canceled), "want context.Canceled, got %v", err)
	case <-time.After(wait):
		t.Fatal("the scan did not stop when its context was cancelled")
	}
	assert.Less(t, rec.calls(), 6, "no new port is tried after the cancel")
}

func TestCommandPrintsOpenPortsAndASummary(t *testing.T) {
	open, closed := listen(t), closedPort(t)
	var out, errOut bytes.Buffer
	ports := strconv.Itoa(open) + "," + strconv.Itoa(closed)
	err := run(context.Background(), []string{"-ports", ports, "-timeout", "5s"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Equal(t, strconv.Itoa(open)+" open\n2 ports scanned: 1 open, 1 closed, 0 filtered, 0 failed\n", out.String())
}

func TestCommandRefusesANonLoopbackHost(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-host", "192.0.2.1", "-ports", "80"}, &out, &out)
	assert.True(t, errors.Is(err, errNotLoopback), "want errNotLoopback, got %v", err)
	assert.Contains(t, explain(err), "only scans this machine")
}

// listen opens a listener on a free loopback port and returns the port.
// Nobody accepts: the kernel completes the handshake by itself.
func listen(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port where nothing listens: one the kernel just
// handed out and that was closed again. (Another program could take it
// in between; on a test machine that does not happen in practice.)
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// scan runs s.Scan with a deadline and requires it to succeed.
func scan(t *testing.T, s Scanner, host string, ports []int) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	results, err := s.Scan(ctx, host, ports)
	require.NoError(t, err)
	return results
}

// recorder is a Scanner.Dial that counts the attempts, how many run at
// once, and the connections opened and closed. With fake set it calls
// that instead of connecting; otherwise it really connects.
type recorder struct {
	fake func(ctx context.Context, inFlight int) (net.Conn, error)

	mu                            sync.Mutex
	n, now, max, nOpened, nClosed int
}

func (r *recorder) dial(ctx context.Context, network, address string) (net.Conn, error) {
	r.mu.Lock()
	r.n++
	r.now++
	r.max = max(r.max, r.now)
	inFlight := r.now
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.now--
		r.mu.Unlock()
	}()

	var conn net.Conn
	var err error
	if r.fake != nil {
		conn, err = r.fake(ctx, inFlight)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.nOpened++
	r.mu.Unlock()
	return &countedConn{Conn: conn, r: r}, nil
}

func (r *recorder) calls() int       { r.mu.Lock(); defer r.mu.Unlock(); return r.n }
func (r *recorder) maxInFlight() int { r.mu.Lock(); defer r.mu.Unlock(); return r.max }
func (r *recorder) opened() int      { r.mu.Lock(); defer r.mu.Unlock(); return r.nOpened }
func (r *recorder) closed() int      { r.mu.Lock(); defer r.mu.Unlock(); return r.nClosed }

// countedConn counts its first Close.
type countedConn struct {
	net.Conn
	r    *recorder
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		c.r.nClosed++
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}
