// Lesson 01-create: create sockets, read and set their options.
//
// Before a program can connect or listen it needs a socket: an endpoint
// that the kernel creates on request and names with a number (a file
// descriptor on Unix, a handle on Windows). This program calls socket()
// itself for each family and type, reads and changes options with
// getsockopt and setsockopt, shows what a failed creation returns, and
// then reaches the same options the way Go programs do: through net.
//
// Run it:
//
//	go run ./01-create
//	go run ./01-create -rcvbuf 100000000   # watch the kernel cap a buffer
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage; asking for help is not a failure.
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", explain(err))
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run is the whole program. Tests call it directly with their own
// arguments and output. It reads no input and needs no network: every
// socket it makes stays on this machine.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("01-create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	rcvbuf := flags.Int("rcvbuf", 8192, "receive buffer size in `bytes` to ask for with SO_RCVBUF")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return errUsage
	}
	if *rcvbuf < 1 || *rcvbuf > 1<<30 {
		fmt.Fprintf(stderr, "-rcvbuf must be between 1 and %d\n", 1<<30)
		flags.Usage()
		return errUsage
	}

	// Step 1 creates one socket of each kind; they stay open until run
	// returns, so steps 2 and 3 can use the TCP and UDP ones.
	opened, err := createEach(stdout)
	defer func() {
		for _, s := range opened {
			closeSocket(s)
		}
	}()
	if err != nil {
		return err
	}
	tcp, udp := opened[0], opened[1]
	readOptions(stdout, tcp)
	setOptions(stdout, tcp, udp, *rcvbuf)
	showFailures(stdout)
	return theGoWay(ctx, stdout, *rcvbuf)
}

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

// errCode is the symbolic name and the number of the error inside err,
// the two things the article's Python example prints.
func errCode(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s (errno %d)", errName(err), int(errno))
	}
	return errName(err)
}

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

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEACCES          = syscall.Errno(10013)
	wsaEINVAL          = syscall.Errno(10022)
	wsaEMFILE          = syscall.Errno(10024)
	wsaEPROTOTYPE      = syscall.Errno(10041)
	wsaENOPROTOOPT     = syscall.Errno(10042)
	wsaEPROTONOSUPPORT = syscall.Errno(10043)
	wsaESOCKTNOSUPPORT = syscall.Errno(10044)
	wsaEAFNOSUPPORT    = syscall.Errno(10047)
)

// explain turns an error into the line a learner sees: what the system
// said, what it means here, and where docs/errors.md says more.
func explain(err error) string {
	switch {
	case errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, wsaEAFNOSUPPORT):
		return fmt.Sprintf("%v: this system does not offer that address family (see docs/errors.md#eafnosupport)", err)
	case errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("%v: only a privileged process may do this; raw sockets need root or CAP_NET_RAW (see docs/errors.md#eperm)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: only a privileged process may do this; on Windows raw sockets need an administrator (see docs/errors.md#eacces)", err)
	case errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, wsaEPROTONOSUPPORT):
		return fmt.Sprintf("%v: that protocol does not go with this family and type (TCP is SOCK_STREAM, UDP is SOCK_DGRAM)", err)
	case errors.Is(err, syscall.ESOCKTNOSUPPORT) || errors.Is(err, wsaESOCKTNOSUPPORT) ||
		errors.Is(err, syscall.EPROTOTYPE) || errors.Is(err, wsaEPROTOTYPE):
		return fmt.Sprintf("%v: this family has no sockets of that type", err)
	case errors.Is(err, syscall.EINVAL) || errors.Is(err, wsaEINVAL):
		return fmt.Sprintf("%v: the kernel refused an argument, such as a socket type that does not exist", err)
	case errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, wsaENOPROTOOPT):
		return fmt.Sprintf("%v: this platform has no such option at that level", err)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, wsaEMFILE):
		return fmt.Sprintf("%v: this process has too many files and sockets open; close some or raise the limit (see docs/errors.md#emfile)", err)
	}
	return err.Error()
}
