package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0), and call the handler's answer
// directly where no connection is needed.

import (
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

const wait = 5 * time.Second

// The article runs the client's line with shell=True. Every one of
// these would then do what it says; here each is refused before
// anything runs.
func TestAllowlistRefusesAShellAndEverythingNotOnIt(t *testing.T) {
	for _, line := range []string{
		"sh -c 'rm -rf ~'",   // a shell is just another unlisted program
		"bash",               //
		"rm -rf /",           //
		"date; rm -rf /",     // ";" is part of the name "date;"
		"$(reboot)",          // no shell, so no command substitution
		"/bin/date",          // a path is not a listed name
		"hostname evil",      // hostname NAME renames the machine
		"date -s 00:00",      // date -s sets the clock
		"date +%2147483647c", // two gigabytes of padding
		"whoami > /etc/motd", // no redirection: extra arguments are refused
		"",
	} {
		reply := string(answer(line))
		assert.True(t, strings.HasPrefix(reply, "refused: "), "%q: got %q", line, reply)
	}
}

func TestNoShellEverSeesTheLine(t *testing.T) {
	skipWithoutEcho(t)
	assert.Equal(t, "$(whoami); rm -rf / | cat *\n", string(answer("echo $(whoami); rm -rf / | cat *")))
}

// The pitfall of this step, which step 4 fixes: the size and the output
// run together in the stream, and nothing says where the size ends. The
// article's client reads the size with one recv and hopes it arrives
// alone; merged with what follows, it is another number.
func TestSizeAndOutputRunTogether(t *testing.T) {
	skipWithoutEcho(t)
	addr := serve(t)
	conn := dial(t, addr)
	// Two commands, then the end of our input; the server answers both
	// and closes.
	_, err := io.WriteString(conn, "echo 1\necho 22\n")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	stream, err := io.ReadAll(conn)
	require.NoError(t, err)

	// "2" then "1\n", "3" then "22\n":
	assert.Equal(t, "21\n322\n", string(stream))
	// Read the article's way, the first size is the digits at the start.
	end := strings.IndexFunc(string(stream), func(r rune) bool { return r < '0' || r > '9' })
	size, err := strconv.Atoi(string(stream[:end]))
	require.NoError(t, err)
	assert.Equal(t, 21, size, "the reader takes 21 for the size; the server meant 2")
}

// ---- helpers ----

// serve runs the step's Server with the cmd handler on a fresh loopback
// listener until the test ends.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	srv := &Server{Handler: cmdHandler{}}
	go srv.Serve(ln)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// skipWithoutEcho skips where echo is not a program: on Windows it is
// built into cmd.exe.
func skipWithoutEcho(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("echo is a cmd.exe built-in on Windows, not a program")
	}
	if _, err := exec.LookPath("echo"); err != nil {
		t.Skip("no echo program on this machine")
	}
}
