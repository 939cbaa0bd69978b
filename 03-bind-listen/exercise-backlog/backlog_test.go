//go:build exercise || solution

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test; short is how long a client
// waits to get into a full queue. On Linux a client whose request was
// dropped tries again after a second, so 300ms tells "in" from "out".
const (
	wait  = 5 * time.Second
	short = 300 * time.Millisecond
)

func TestSmallBacklogLetsBacklogPlusOneClientsIn(t *testing.T) {
	onlyLinux(t)
	for _, backlog := range []int{1, 4} {
		ln := listen(t, backlog)
		n := depth(t, ln, 16)
		// Linux counts the queue as full only when it holds MORE than
		// the backlog, so one client more gets in.
		assert.Equal(t, backlog+1, n, "backlog %d", backlog)
	}
}

func TestGoDefaultBacklogLetsManyMoreIn(t *testing.T) {
	onlyLinux(t)
	// net.Listen asks for the system's maximum (4096 on recent Linux).
	// Eight clients are far from it: they all get in, and no client
	// has to time out, so this test is quick.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	assert.Equal(t, 8, depth(t, ln, 8))
}

func TestSSShowsTheChosenBacklog(t *testing.T) {
	onlyLinux(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) is not installed")
	}
	ln := listen(t, 7)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	// For a listening socket, ss shows the backlog in the Send-Q
	// column: State Recv-Q Send-Q Local-Address Peer-Address.
	out, err := exec.Command("ss", "-ltnH", "sport = :"+port).Output()
	require.NoError(t, err)
	fields := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(fields), 3, "ss printed %q", out)
	assert.Equal(t, "7", fields[2], "Send-Q of the listener: %q", out)
}

func TestQueuedClientsAreServedOnceSomeoneAccepts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows keeps the first backlog of a listening socket; see README.md")
	}
	ln := listen(t, 2)
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("queued\n"))
	require.NoError(t, err)

	// The queued connection, with its data, is what Accept returns.
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	srv, err := ln.Accept()
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.SetDeadline(time.Now().Add(wait)))
	buf := make([]byte, 7)
	_, err = srv.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "queued\n", string(buf))
}

func TestBacklogBelowOneIsRefused(t *testing.T) {
	for _, b := range []int{0, -1} {
		ln, err := listenBacklog(context.Background(), "127.0.0.1:0", b)
		if ln != nil {
			ln.Close()
		}
		assert.True(t, errors.Is(err, errBadBacklog), "backlog %d: want errBadBacklog, got %v", b, err)
	}
}

func TestBusyAddressIsAnErrorNotAPanic(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	ln, err := listenBacklog(context.Background(), busy.Addr().String(), 3)
	if ln != nil {
		ln.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), busy.Addr().String(), "the error names the address")
}

func TestQueueDepthStopsAtItsLimitAndClosesItsClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	assert.Equal(t, 3, depth(t, ln, 3))

	// The three clients were closed: each queued connection, once
	// accepted, reads the end of the stream at once.
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	for i := 0; i < 3; i++ {
		conn, err := ln.Accept()
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
		_, err = conn.Read(make([]byte, 1))
		assert.Error(t, err, "client %d should have been closed", i+1)
		assert.False(t, isTimeout(err), "client %d is still open: %v", i+1, err)
		conn.Close()
	}
}

func TestQueueDepthReportsOtherErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a cancelled scan is not "the queue is full"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = queueDepth(ctx, ln.Addr().String(), 3, short)
	assert.True(t, errors.Is(err, context.Canceled), "want context.Canceled, got %v", err)
}

func TestCommandReportsHowManyClientsGotIn(t *testing.T) {
	onlyLinux(t)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-backlog", "2", "-timeout", short.String()}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Regexp(t, `^listening on 127\.0\.0\.1:\d+ with backlog 2; nobody accepts
3 clients connected; client 4 could not get in within 300ms
$`, out.String())
}

// onlyLinux skips where the count differs or is not known: macOS and the
// BSDs size the queue by their own rule, and Windows ignores a second
// listen() call.
func onlyLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the queue is counted on Linux only, not on %s; see README.md", runtime.GOOS)
	}
}

// listen calls listenBacklog on a free loopback port and requires it to
// work; the listener is closed when the test ends.
func listen(t *testing.T, backlog int) net.Listener {
	t.Helper()
	ln, err := listenBacklog(context.Background(), "127.0.0.1:0", backlog)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// depth runs queueDepth with the short timeout, bounded by wait.
func depth(t *testing.T, ln net.Listener, limit int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := queueDepth(ctx, ln.Addr().String(), limit, short)
	require.NoError(t, err)
	return n
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
