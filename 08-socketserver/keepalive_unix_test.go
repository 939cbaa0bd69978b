//go:build unix

package main

import (
	"bytes"
	"log"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go's net turns TCP keep-alive on for every accepted connection, four
// setsockopt calls each. A server with an IdleTimeout finds a vanished
// client itself, so ListenAndServe asks for none: the socket its handler
// gets has SO_KEEPALIVE off. Without an IdleTimeout, Go's default stays.
func TestListenAndServeTurnsKeepAliveOffWhenItHasAnIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want int
	}{{time.Minute, 0}, {0, 1}} {
		keepAlive := make(chan int, 1)
		logged := &syncBuffer{}
		srv := &Server{Addr: "127.0.0.1:0", IdleTimeout: tc.idle, Log: log.New(logged, "", 0),
			Handler: HandlerFunc(func(conn net.Conn) {
				raw, err := conn.(*serverConn).Conn.(*net.TCPConn).SyscallConn()
				on := -1 // if it cannot be read
				if assert.NoError(t, err) {
					raw.Control(func(fd uintptr) {
						on, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
					})
					assert.NoError(t, err)
				}
				keepAlive <- on
			})}
		done := make(chan error, 1)
		go func() { done <- srv.ListenAndServe() }()
		var addr string
		require.Eventually(t, func() bool {
			line, _, _ := strings.Cut(logged.String(), "\n")
			addr, _ = strings.CutPrefix(line, "listening on ")
			return addr != ""
		}, wait, time.Millisecond, "the server logs its address")
		conn, err := net.DialTimeout("tcp", addr, wait)
		require.NoError(t, err)
		select {
		case on := <-keepAlive:
			assert.Equal(t, tc.want, on, "SO_KEEPALIVE with IdleTimeout %v", tc.idle)
		case <-time.After(wait):
			t.Fatal("the handler never ran")
		}
		conn.Close()
		srv.Close()
		<-done
	}
}

// syncBuffer is a bytes.Buffer that the server's log and the test may
// use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
