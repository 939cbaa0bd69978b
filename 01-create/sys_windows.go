// The system calls of this lesson on Windows, through Winsock and
// golang.org/x/sys/windows. sys_unix.go is the same for Unix.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// sock is what socket() returns on Windows: a SOCKET handle, not a small
// file descriptor. Go's runtime has already called WSAStartup.
type sock = windows.Handle

// The numbers behind the names, from Winsock. golang.org/x/sys/windows
// does not name SO_TYPE, SO_ERROR and SO_OOBINLINE, so their values are
// copied from winsock2.h.
const (
	afInet      = windows.AF_INET
	afInet6     = windows.AF_INET6
	afUnix      = windows.AF_UNIX
	sockStream  = windows.SOCK_STREAM
	sockDgram   = windows.SOCK_DGRAM
	sockRaw     = windows.SOCK_RAW
	ipprotoICMP = windows.IPPROTO_ICMP
	ipprotoTCP  = windows.IPPROTO_TCP
	ipprotoUDP  = windows.IPPROTO_UDP
	solSocket   = windows.SOL_SOCKET
	soType      = 0x1008
	soError     = 0x1007
	soReuseAddr = windows.SO_REUSEADDR
	soKeepAlive = windows.SO_KEEPALIVE
	soBroadcast = windows.SO_BROADCAST
	soDontRoute = windows.SO_DONTROUTE
	soOOBInline = 0x0100
	soRcvBuf    = windows.SO_RCVBUF
	tcpNoDelay  = windows.TCP_NODELAY
)

// newSocket is Winsock's socket(): a new SOCKET handle, or an error.
func newSocket(family, typ, proto int) (sock, error) {
	h, err := windows.Socket(family, typ, proto)
	if err != nil {
		return windows.InvalidHandle, os.NewSyscallError("socket", err)
	}
	return h, nil
}

// closeSocket is closesocket(): Windows does not close sockets with the
// CloseHandle it uses for files.
func closeSocket(s sock) error {
	return os.NewSyscallError("closesocket", windows.Closesocket(s))
}

// getInt is getsockopt() for an option whose value is an int.
func getInt(s sock, level, opt int) (int, error) {
	v, err := windows.GetsockoptInt(s, level, opt)
	return v, os.NewSyscallError("getsockopt", err)
}

// setInt is setsockopt() for an int option (a boolean is 0 or 1).
func setInt(s sock, level, opt, value int) error {
	return os.NewSyscallError("setsockopt", windows.SetsockoptInt(s, level, opt, value))
}

// sockFromRaw turns the uintptr that syscall.RawConn hands to its
// callbacks back into a SOCKET handle.
func sockFromRaw(fd uintptr) sock { return windows.Handle(fd) }

// sockName is how the program shows a socket: its handle number.
func sockName(s sock) string { return fmt.Sprintf("handle=%d", s) }

// wsaNames names the Winsock errors this lesson can meet.
var wsaNames = map[syscall.Errno]string{
	10013: "WSAEACCES",
	10022: "WSAEINVAL",
	10024: "WSAEMFILE",
	10041: "WSAEPROTOTYPE",
	10042: "WSAENOPROTOOPT",
	10043: "WSAEPROTONOSUPPORT",
	10044: "WSAESOCKTNOSUPPORT",
	10045: "WSAEOPNOTSUPP",
	10047: "WSAEAFNOSUPPORT",
}

// errName gives the symbolic name of the Winsock error inside err.
func errName(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "error"
	}
	if name, ok := wsaNames[errno]; ok {
		return name
	}
	return fmt.Sprintf("error %d", int(errno))
}
