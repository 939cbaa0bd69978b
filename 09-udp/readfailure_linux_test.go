package main

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On Windows, a UDP socket's ReadFrom fails with WSAECONNRESET after one
// of its replies met a closed port. Linux reports such errors on an
// unconnected socket only when IP_RECVERR is on, so this test turns it
// on for the server's socket (found among this process's descriptors)
// and makes the failure happen: the server must log it and go on.
func TestFailedReadIsLoggedAndTheServerGoesOn(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	setRecvErr(t, srv.addr)

	// Each client sends a datagram and closes at once, so the reply
	// usually meets a closed port, and the kernel's ICMP "port
	// unreachable" becomes the error of the server's next ReadFrom.
	// The server's log is written by a goroutine of its own, so the
	// test waits for the line, and then stops the clients.
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for range 1000 { // at most
			select {
			case <-stop:
				sent <- nil
				return
			default:
			}
			conn, err := net.DialTimeout("udp", srv.addr, wait)
			if err != nil {
				sent <- err
				return
			}
			conn.Write(nil) // a request: only a request is answered
			conn.Close()
		}
		sent <- nil
	}()
	line := srv.out.waitFor(t, "read failed, going on: ")
	close(stop)
	select {
	case err := <-sent:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("the clients never stopped")
	}
	t.Logf("%d datagrams logged before the failure: %s", strings.Count(srv.out.String(), " sent "), line)
	assert.Contains(t, line, "connection refused")

	// The server goes on: a fresh client gets the time.
	out, _, err := ask(t, time.Now, "-client", "-addr", srv.addr, "-timeout", "100ms", "-retries", "5")
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
}

// setRecvErr turns on IP_RECVERR for the UDP socket of this process that
// is bound to addr.
func setRecvErr(t *testing.T, addr string) {
	t.Helper()
	require.NoError(t, syscall.SetsockoptInt(socketOf(t, addr), syscall.SOL_IP, syscall.IP_RECVERR, 1))
}
