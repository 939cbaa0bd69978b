package main

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

// linuxWords is how Linux words the system error a README transcript
// shows, keyed by Winsock's number for the same error. Windows words it
// its own way ("bind: Only one usage of each socket address
// (protocol/network address/port) is normally permitted.").
var linuxWords = map[syscall.Errno]string{
	windows.WSAEADDRINUSE: "bind: address already in use",
}

// inLinuxWords puts Linux's words in place of Windows' own for the error
// inside err, so the transcript test still compares everything else on
// the line. (helpers_other_test.go returns the line unchanged.)
func inLinuxWords(t *testing.T, err error, line string) string {
	t.Helper()
	var sysErr *os.SyscallError
	require.True(t, errors.As(err, &sysErr), "want an *os.SyscallError inside %v", err)
	var errno syscall.Errno
	require.True(t, errors.As(sysErr, &errno), "want a syscall.Errno inside %v", sysErr)
	linux, ok := linuxWords[errno]
	require.True(t, ok, "no Linux wording for Winsock error %d (%v)", int(errno), errno)
	require.Contains(t, line, sysErr.Error())
	return strings.Replace(line, sysErr.Error(), linux, 1)
}
