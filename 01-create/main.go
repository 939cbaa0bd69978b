// Lesson 01-create: create sockets, read and set their options.
//
// Before a program can connect or listen it needs a socket: an endpoint
// that the kernel creates on request and names with a number (a file
// descriptor on Unix, a handle on Windows). This program calls socket()
// itself for each family and type, reads and changes options with
// getsockopt and setsockopt, shows what a failed creation returns, and
// then reaches the same options the way Go programs do: through net.
//
// This file is steps 1 to 4: socket() and its options, by hand.
// goway.go is step 5, the same through package net; cli.go has main and
// the flags, errors.go the one-line explanations, and sys_unix.go and
// sys_windows.go the system calls themselves.
//
// Run it:
//
//	go run ./01-create
//	go run ./01-create -rcvbuf 100000000   # watch the kernel cap a buffer
package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
)

// kind is one call to socket(family, type, protocol), with the names a C
// or Python programmer would write, and what such a socket is for.
type kind struct {
	family, typ, proto         int
	familyName, typeName, prot string
	what                       string
}

// call shows the arguments the way the man page writes them.
func (k kind) call() string {
	return fmt.Sprintf("socket(%s, %s, %s)", k.familyName, k.typeName, k.prot)
}

// kinds are the sockets a program meets every day. Protocol 0 means "the
// usual one for this family and type": TCP for a stream over IP, UDP for
// datagrams over IP.
var kinds = []kind{
	{afInet, sockStream, 0, "AF_INET", "SOCK_STREAM", "0", "TCP over IPv4"},
	{afInet, sockDgram, 0, "AF_INET", "SOCK_DGRAM", "0", "UDP over IPv4"},
	{afInet6, sockStream, 0, "AF_INET6", "SOCK_STREAM", "0", "TCP over IPv6"},
	{afInet6, sockDgram, 0, "AF_INET6", "SOCK_DGRAM", "0", "UDP over IPv6"},
	{afUnix, sockStream, 0, "AF_UNIX", "SOCK_STREAM", "0", "a stream between local processes"},
	{afUnix, sockDgram, 0, "AF_UNIX", "SOCK_DGRAM", "0", "datagrams between local processes"},
}

// createEach calls socket() for every kind and prints a row for each:
// the descriptor it got, or the error. It returns the sockets it opened,
// TCP over IPv4 first and UDP over IPv4 second; without those two the
// rest of the lesson cannot go on, so their failure is an error.
func createEach(w io.Writer) ([]sock, error) {
	fmt.Fprintln(w, "1. socket(family, type, protocol) asks the kernel for a new socket:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	var opened []sock
	for i, k := range kinds {
		s, err := newSocket(k.family, k.typ, k.proto)
		if err != nil {
			fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t-> %s: %s\n", k.familyName, k.typeName, k.prot, k.what, errCode(err), explain(err))
			if i < 2 {
				tw.Flush()
				return opened, fmt.Errorf("%s: %w", k.call(), err)
			}
			continue
		}
		opened = append(opened, s)
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t-> %s\n", k.familyName, k.typeName, k.prot, k.what, sockName(s))
	}
	return opened, nil
}

// option is one socket option at level SOL_SOCKET, as the article's
// table lists them, with what it changes.
type option struct {
	name string
	opt  int
	what string
}

var options = []option{
	{"SO_TYPE", soType, "the type the socket was created with"},
	{"SO_ERROR", soError, "an error waiting to be reported; reading it clears it"},
	{"SO_REUSEADDR", soReuseAddr, "bind even while old connections linger in TIME_WAIT"},
	{"SO_KEEPALIVE", soKeepAlive, "probe an idle connection to learn if the peer is gone"},
	{"SO_BROADCAST", soBroadcast, "allow datagrams to a broadcast address"},
	{"SO_DONTROUTE", soDontRoute, "reach directly attached networks only, no router"},
	{"SO_OOBINLINE", soOOBInline, "deliver urgent (out-of-band) data in the normal stream"},
}

// readOptions prints every option of a fresh TCP socket. A new socket
// starts with them all off: each one is something a program asks for.
func readOptions(w io.Writer, tcp sock) {
	fmt.Fprintf(w, "\n2. getsockopt(%s, SOL_SOCKET, option) reads the new TCP socket's options:\n", sockName(tcp))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	for _, o := range options {
		v, err := getInt(tcp, solSocket, o.opt)
		if err != nil {
			fmt.Fprintf(tw, "   %s\t%s\t%s\n", o.name, errName(err), explain(err))
			continue
		}
		fmt.Fprintf(tw, "   %s\t%d\t%s\n", o.name, v, o.what)
	}
}

// setOptions turns options on with setsockopt and reads each back with
// getsockopt. The kernel is free to adjust a value: the read-back is the
// truth, not the number that was asked for.
func setOptions(w io.Writer, tcp, udp sock, rcvbuf int) {
	fmt.Fprintln(w, "\n3. setsockopt(fd, SOL_SOCKET, option, value) changes an option; getsockopt reads it back:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "   option\tsocket\tset\tread back")
	rows := []struct {
		name     string
		s        sock
		sockName string
		opt, val int
	}{
		{"SO_REUSEADDR", tcp, "TCP", soReuseAddr, 1},
		{"SO_KEEPALIVE", tcp, "TCP", soKeepAlive, 1},
		{"SO_OOBINLINE", tcp, "TCP", soOOBInline, 1},
		{"SO_BROADCAST", udp, "UDP", soBroadcast, 1},
		{"SO_DONTROUTE", udp, "UDP", soDontRoute, 1},
		{"SO_RCVBUF", tcp, "TCP", soRcvBuf, rcvbuf},
	}
	for _, r := range rows {
		got, err := setAndGet(r.s, solSocket, r.opt, r.val)
		if err != nil {
			fmt.Fprintf(tw, "   %s\t%s\t%d\t%s\t%s\n", r.name, r.sockName, r.val, errName(err), explain(err))
			continue
		}
		note := adjusted(r.val, got)
		if note == "" {
			// No trailing tab: tabwriter would pad the empty cell.
			fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\n", r.name, r.sockName, r.val, got)
			continue
		}
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%s\n", r.name, r.sockName, r.val, got, note)
	}

	// SO_BINDTODEVICE names a network interface: its value is a string,
	// and only Linux has it (see device_linux.go).
	name, err := bindToDevice(udp)
	if err != nil {
		fmt.Fprintf(tw, "   SO_BINDTODEVICE\tUDP\t%q\t-\t%s\n", "lo", explain(err))
		return
	}
	fmt.Fprintf(tw, "   SO_BINDTODEVICE\tUDP\t%q\t%q\t%s\n", "lo", name, "the socket now uses interface lo only")
}

// setAndGet sets an int option and returns what getsockopt then reads.
func setAndGet(s sock, level, opt, value int) (int, error) {
	if err := setInt(s, level, opt, value); err != nil {
		return 0, err
	}
	return getInt(s, level, opt)
}

// adjusted says what the kernel did when the value read back is not
// the value set. Linux doubles a buffer size to make room for its own
// bookkeeping, and caps it at a system-wide maximum.
func adjusted(set, got int) string {
	switch {
	case got == set:
		return ""
	case got == 2*set:
		return "doubled by the kernel (Linux counts its bookkeeping too)"
	case runtime.GOOS == "linux" && got < 2*set:
		return "capped: Linux allows at most twice net.core.rmem_max"
	}
	return "changed by the kernel, which keeps it between a minimum and a maximum"
}

// impossible are calls that cannot give a socket, and one that needs
// privilege: a raw socket sees whole IP packets, such as the ICMP echo
// replies ping reads, so ordinary users may not open one.
var impossible = []kind{
	{9999, sockStream, 0, "9999", "SOCK_STREAM", "0", "no family has number 9999"},
	{afInet, 9999, 0, "AF_INET", "9999", "0", "no type has number 9999"},
	{afInet, sockStream, ipprotoUDP, "AF_INET", "SOCK_STREAM", "IPPROTO_UDP", "UDP does not make streams"},
	{afInet, sockRaw, ipprotoICMP, "AF_INET", "SOCK_RAW", "IPPROTO_ICMP", "raw ICMP needs privilege"},
}

// showFailures calls socket() where it fails and prints what comes back:
// no descriptor, but an error number. Python raises socket.error (now
// OSError) carrying it; Go returns it as an error value that
// errors.Is can compare with syscall.EAFNOSUPPORT and friends.
func showFailures(w io.Writer) {
	fmt.Fprintln(w, "\n4. When socket() cannot make the socket, it returns an error number instead:")
	for _, k := range impossible {
		fmt.Fprintf(w, "   %s  (%s)\n", k.call(), k.what)
		s, err := newSocket(k.family, k.typ, k.proto)
		if err != nil {
			fmt.Fprintf(w, "     %s: %s\n", errCode(err), explain(err))
			continue
		}
		// Running as root (or, on Linux, with CAP_NET_RAW; on Windows as
		// an administrator) the raw socket is allowed.
		fmt.Fprintf(w, "     %s: created, because this process has the privilege raw sockets need\n", sockName(s))
		closeSocket(s)
	}
}
