//go:build exercise || solution

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestAddressInUseIsRecognisedWithErrorsIs(t *testing.T) {
	p := busyPort(t)
	_, err := net.Listen("tcp", addrOf(p))
	require.Error(t, err)
	assert.True(t, isAddrInUse(err), "net.Listen on a busy port: %v", err)
	assert.True(t, isAddrInUse(fmt.Errorf("wrapped: %w", wsaEADDRINUSE)), "Winsock's WSAEADDRINUSE counts too")
	assert.False(t, isAddrInUse(syscall.EADDRNOTAVAIL), "another error is not address-in-use")
	assert.False(t, isAddrInUse(errors.New("bind: address already in use")), "the message text is not the error")
}

func TestPortZeroGetsAnyFreePortAtOnce(t *testing.T) {
	var log bytes.Buffer
	ln := mustListen(t, &log, 0, 5)
	assert.NotZero(t, portOf(ln), "the listener reports the port the kernel chose")
	assert.Empty(t, log.String(), "nothing to fall back from")
}

func TestFreePortIsTakenAsIs(t *testing.T) {
	p := freePort(t)
	var log bytes.Buffer
	ln := mustListen(t, &log, p, 5)
	assert.Equal(t, p, portOf(ln))
	assert.Empty(t, log.String())
}

func TestBusyPortFallsBackToTheNextFreeOne(t *testing.T) {
	p := busyPort(t)
	if p > 65535-20 {
		t.Skipf("port %d is too close to 65535 for 20 tries", p)
	}
	var log bytes.Buffer
	ln := mustListen(t, &log, p, 20)

	got := portOf(ln)
	assert.Greater(t, got, p, "the busy port is skipped")
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	assert.Equal(t, fmt.Sprintf("%s is in use, trying %s", addrOf(p), addrOf(p+1)), lines[0])
	// Another program may hold p+1 too; then there is one line per
	// busy port, and the listener is on the port after the last one.
	assert.Len(t, lines, got-p, "one line per busy port:\n%s", log.String())

	// The listener is real: a client can connect to it.
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	conn.Close()
}

func TestEveryPortInUseFailsWithAddressInUse(t *testing.T) {
	p := twoBusyPortsInARow(t)
	var log bytes.Buffer
	ln, err := listenFallback(&log, "127.0.0.1", p, 2)
	if ln != nil {
		ln.Close()
	}
	require.Error(t, err)
	assert.True(t, errors.Is(err, errAllInUse), "want errAllInUse, got %v", err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE),
		"the system's error must stay in the chain: %v", err)
	assert.Equal(t, fmt.Sprintf("%s is in use, trying %s\n", addrOf(p), addrOf(p+1)), log.String())
}

func TestOtherErrorsStopAtOnce(t *testing.T) {
	// 192.0.2.1 is a documentation address, never this machine's, so
	// bind fails with "cannot assign requested address". Every other
	// port would fail the same way: there is no point trying them.
	var log bytes.Buffer
	ln, err := listenFallback(&log, "192.0.2.1", freePort(t), 5)
	if ln != nil {
		ln.Close()
	}
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL), "want EADDRNOTAVAIL, got %v", err)
	assert.False(t, errors.Is(err, errAllInUse))
	assert.Empty(t, log.String(), "no fallback for an error that is not address-in-use")
}

func TestBadPortsAndTriesAreRefusedBeforeBinding(t *testing.T) {
	for _, tc := range []struct{ port, tries int }{
		{-1, 1}, {65536, 1}, {8080, 0}, {65535, 2}, {65000, 1000},
	} {
		ln, err := listenFallback(&bytes.Buffer{}, "127.0.0.1", tc.port, tc.tries)
		if ln != nil {
			ln.Close()
		}
		assert.True(t, errors.Is(err, errBadRange), "port %d, tries %d: want errBadRange, got %v", tc.port, tc.tries, err)
	}
}

func TestCommandPrintsWhereItListensAndStopsOnCancel(t *testing.T) {
	p := busyPort(t)
	if p > 65535-20 {
		t.Skipf("port %d is too close to 65535 for 20 tries", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLines()
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", addrOf(p), "-tries", "20"}, out, &errOut) }()

	// The first line comes before run can fail: run prints it only once
	// it listens. (If run fails instead, next says so after wait.)
	line := out.next(t)
	assert.Regexp(t, `^listening on 127\.0\.0\.1:\d+$`, line)
	assert.NotEqual(t, "listening on "+addrOf(p), line)
	cancel() // what Ctrl+C does
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("run did not stop when cancelled")
	}
	assert.Contains(t, errOut.String(), addrOf(p)+" is in use, trying "+addrOf(p+1))
}

// mustListen calls listenFallback on 127.0.0.1 and requires a listener,
// which the test closes when it ends.
func mustListen(t *testing.T, log *bytes.Buffer, port, tries int) net.Listener {
	t.Helper()
	ln, err := listenFallback(log, "127.0.0.1", port, tries)
	require.NoError(t, err)
	require.NotNil(t, ln)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// busyPort listens on a port the kernel picks, and keeps it until the
// test ends.
func busyPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return portOf(ln)
}

// freePort is a port that was free a moment ago: the kernel picked it,
// and the listener was closed again.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := portOf(ln)
	require.NoError(t, ln.Close())
	return p
}

// twoBusyPortsInARow returns a port p such that p and p+1 are both in
// use: p is held by this test, and p+1 too if it is free. If p+1 is
// already in use, someone else holds it, which serves as well: on a busy
// Linux machine outgoing connections take ports from the same range, and
// one in TIME_WAIT blocks a listener for a minute. (A port that someone
// else holds could be freed in the next millisecond; that race is too
// rare to matter here.)
func twoBusyPortsInARow(t *testing.T) int {
	t.Helper()
	p := busyPort(t)
	if p == 65535 {
		t.Skip("the kernel picked port 65535, which has no neighbour above")
	}
	ln, err := net.Listen("tcp", addrOf(p+1))
	switch {
	case err == nil:
		t.Cleanup(func() { ln.Close() })
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		// Busy already.
	default:
		t.Skipf("cannot hold port %d: %v", p+1, err)
	}
	return p
}

func addrOf(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// lines is an io.Writer that keeps what the program prints, so a test
// can wait for the next line instead of sleeping. It never blocks the
// program and never drops a line: Write appends under a mutex and wakes
// a waiter through a channel that holds at most one wake-up, and the
// waiter looks again, with a deadline.
type lines struct {
	mu       sync.Mutex
	all      strings.Builder
	complete []string // every whole line so far
	part     string   // the start of a line still being written
	taken    int      // lines already returned by next
	notify   chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.complete = append(l.complete, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is already waiting
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next whole line the program printed, waiting for it
// for at most wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		if l.taken < len(l.complete) {
			line := l.complete[l.taken]
			l.taken++
			l.mu.Unlock()
			return line
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}
