package docs

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenBacklogIsSomaxconn(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss (iproute2) is not installed")
	}
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	require.NoError(t, err)
	somaxconn := strings.TrimSpace(string(b))
	ln := listen(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// For a listening socket, ss shows the backlog in the Send-Q column.
	out, err := exec.Command(ss, "-ltnH", "sport = :"+port).Output()
	require.NoError(t, err)
	fields := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(fields), 4, "ss printed %q", out)
	assert.Equal(t, somaxconn, fields[2], "Go's backlog should be net.core.somaxconn")
}

func TestSsShowsAnEstablishedConnection(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss (iproute2) is not installed")
	}
	client, _ := pair(t)
	local := client.LocalAddr().String()

	out, err := exec.Command(ss, "-tnH", "state", "established", "src", local).Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), local)
}

func TestBlockedReadsDoNotHoldThreads(t *testing.T) {
	before := threads(t)
	const conns = 300
	done := make(chan struct{})
	defer close(done)
	started := make(chan struct{}, conns)
	for i := 0; i < conns; i++ {
		client, server := pair(t)
		// Linger 0: closing sends RST, so the 300 connections leave no
		// TIME_WAIT records behind (see concepts/time-wait-reuseaddr-backlog.md).
		require.NoError(t, client.(*net.TCPConn).SetLinger(0))
		require.NoError(t, server.(*net.TCPConn).SetLinger(0))
		go func() {
			started <- struct{}{}
			// Blocks: the peer never sends. The deadline ends it.
			client.Read(make([]byte, 1))
		}()
	}
	for i := 0; i < conns; i++ {
		<-started
	}
	waitForIOWait(t, conns)

	// 300 goroutines wait in Read, yet the process has about as many
	// threads as before: the runtime poller waits for all of them.
	after := threads(t)
	t.Logf("threads before: %d, with %d blocked reads: %d", before, conns, after)
	assert.Less(t, after, before+conns/10)
}

// waitForIOWait waits until at least n goroutines are parked in the
// runtime poller, which goroutine dumps show as "[IO wait".
func waitForIOWait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	buf := make([]byte, 8<<20)
	for time.Now().Before(deadline) {
		dump := string(buf[:runtime.Stack(buf, true)])
		if strings.Count(dump, "[IO wait") >= n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("fewer than %d goroutines reached IO wait", n)
}

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}
