// Step 5 of 01-create: the options of step 3, reached the way Go
// programs do, through package net.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"text/tabwriter"
	"time"
)

// theGoWay does with the net package what the steps above did by hand.
// net.Listen and net.Dial call socket() themselves, so a Go program
// never holds a socket that is not yet bound or connected. When it needs
// an option, ListenConfig.Control (or Dialer.Control) runs between
// socket() and bind(), and SyscallConn reaches the socket later.
func theGoWay(ctx context.Context, w io.Writer, rcvbuf int) error {
	fmt.Fprintln(w, "\n5. The Go way: net.ListenConfig calls socket(), bind() and listen() in one go;")
	fmt.Fprintln(w, "   its Control function reaches the socket in between:")
	ln, err := listenWithRcvBuf(ctx, w, "127.0.0.1:0", rcvbuf)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(w, "   listening on %s\n", ln.Addr())

	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return fmt.Errorf("reach the listener's socket: %w", err)
	}
	fmt.Fprintln(w, "   the listener's options, read through SyscallConn:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	printOption(tw, raw, "SO_REUSEADDR", solSocket, soReuseAddr, "Go sets it on every listener, except on Windows")
	printOption(tw, raw, "SO_RCVBUF", solSocket, soRcvBuf, "what Control set, as the kernel keeps it")
	tw.Flush()

	// The connection waits in the listener's backlog: no Accept is
	// needed to read the options of the dialling side.
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", ln.Addr(), err)
	}
	defer conn.Close()
	raw, err = conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return fmt.Errorf("reach the connection's socket: %w", err)
	}
	fmt.Fprintln(w, "   a connection made by net.Dial, read the same way:")
	printOption(tw, raw, "SO_KEEPALIVE", solSocket, soKeepAlive, "Go turns keep-alive on for every TCP connection")
	printOption(tw, raw, "TCP_NODELAY", ipprotoTCP, tcpNoDelay, "Go turns Nagle's algorithm off (SetNoDelay)")
	tw.Flush()
	return nil
}

// listenWithRcvBuf listens on addr like net.Listen, but first sets
// SO_RCVBUF on the new socket. The receive buffer is best set before
// listen: TCP agrees on its window scale in the handshake, from the
// buffer size at that moment.
func listenWithRcvBuf(ctx context.Context, log io.Writer, addr string, size int) (net.Listener, error) {
	lc := net.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			var setErr error
			err := c.Control(func(fd uintptr) {
				s := sockFromRaw(fd)
				setErr = setInt(s, solSocket, soRcvBuf, size)
				fmt.Fprintf(log, "   Control(%q, %q) on %s, before bind: SO_RCVBUF = %d\n", network, address, sockName(s), size)
			})
			return errors.Join(err, setErr)
		},
	}
	ln, err := lc.Listen(ctx, "tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// readOption is getsockopt on a socket that the net package owns.
// RawConn.Control lends the descriptor for the length of the callback,
// and keeps the net package from closing it meanwhile.
func readOption(raw syscall.RawConn, level, opt int) (int, error) {
	var v int
	var getErr error
	err := raw.Control(func(fd uintptr) {
		v, getErr = getInt(sockFromRaw(fd), level, opt)
	})
	return v, errors.Join(err, getErr)
}

// printOption prints one row: the option, its value, and what it means.
func printOption(w io.Writer, raw syscall.RawConn, name string, level, opt int, what string) {
	v, err := readOption(raw, level, opt)
	if err != nil {
		fmt.Fprintf(w, "     %s\t%s\t%s\n", name, errName(err), explain(err))
		return
	}
	fmt.Fprintf(w, "     %s\t%d\t%s\n", name, v, what)
}
