package main

// Step 1's tests run serve in this process, on a socket the test opens,
// and play the article's client against it. The README's session is
// checked by building the programs and running them, as a learner does.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestEmptyDatagramGetsTheTimeAsFourBytes(t *testing.T) {
	srv := startServe(t)
	before := time.Now().Truncate(time.Second)
	got, err := articlesClient(dial(t, srv))
	require.NoError(t, err)
	assert.WithinRange(t, got, before, time.Now())
}

// The pitfall, fixed in step 2: the article's client waits for its
// reply with no deadline. A lost datagram never arrives, nothing says
// so, and the client waits for ever.
func TestArticlesClientWaitsForeverForALostReply(t *testing.T) {
	// This peer receives and never answers: to a client, that is what
	// a lost request, or a lost reply, looks like.
	peer := listen(t)
	conn := dial(t, peer.LocalAddr().String())
	done := make(chan error, 1)
	go func() {
		_, err := articlesClient(conn)
		done <- err
	}()
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(wait)))
	_, client, err := peer.ReadFrom(make([]byte, 64*1024))
	require.NoError(t, err, "the request arrives")

	// Forever cannot be waited for. The client has no timer of its own,
	// so if it has not returned after 300 ms, only an answer can end its
	// wait.
	select {
	case err := <-done:
		t.Fatalf("the client returned with no answer: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = peer.WriteTo(binary.BigEndian.AppendUint32(nil, 1), client)
	require.NoError(t, err)
	select {
	case err := <-done:
		assert.NoError(t, err, "the answer, however late, is what ended the wait")
	case <-time.After(wait):
		t.Fatal("the client did not return after the answer")
	}
}

// The README's session: this step's server and the lesson's client, both
// built and run as go run runs them, since the server's first line is
// printed by main.
func TestReadmeBareProgramTranscript(t *testing.T) {
	step, lesson := build(t, "."), build(t, "../..")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	server := exec.CommandContext(ctx, step, "-addr", "127.0.0.1:0")
	stdout, err := server.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	first, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(first), "listening on ")
	require.True(t, ok, "got %q", first)

	client, err := exec.CommandContext(ctx, lesson, "-client", "-addr", addr).Output()
	require.NoError(t, err)

	// "$ " lines, ports and times aside.
	assert.Equal(t, readmeBlock(t, "step-1-server"), normalize(first))
	assert.Equal(t, readmeBlock(t, "step-1-client"), normalize(string(client)))
}

// articlesClient is the article's client, in Go: it sends an empty
// datagram, waits for the reply with no deadline, and checks that it is
// 4 bytes.
func articlesClient(conn net.Conn) (time.Time, error) {
	if _, err := conn.Write(nil); err != nil {
		return time.Time{}, err
	}
	reply := make([]byte, 64*1024)
	n, err := conn.Read(reply)
	if err != nil {
		return time.Time{}, err
	}
	if n != 4 {
		return time.Time{}, fmt.Errorf("a time is 4 bytes, got %d", n)
	}
	return time.Unix(int64(binary.BigEndian.Uint32(reply)), 0), nil
}

// ---- helpers ----

// startServe runs serve on a fresh socket on loopback and returns the
// socket's address; the socket is closed, and serve ended, at cleanup.
func startServe(t *testing.T) string {
	t.Helper()
	conn := listen(t)
	done := make(chan error, 1)
	go func() { done <- serve(conn) }()
	t.Cleanup(func() {
		conn.Close()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("serve did not return after its socket was closed")
		}
	})
	return conn.LocalAddr().String()
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// build compiles the package in dir into a temporary folder.
func build(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH, so the programs cannot be built")
	}
	bin := filepath.Join(t.TempDir(), "program")
	out, err := exec.Command(goTool, "build", "-o", bin, dir).CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

var (
	ports = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	times = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
)

func normalize(s string) string {
	return times.ReplaceAllString(ports.ReplaceAllString(s, "127.0.0.1:PORT"), "TIME")
}

// readmeBlock returns the lesson README's block marked
// <!-- transcript: name -->, without its "$ " lines, normalized.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: "+name+" -->\n```console\n")
	require.True(t, ok, "README.md has no %s transcript", name)
	block, _, _ := strings.Cut(after, "```")
	var kept []string
	for _, line := range strings.SplitAfter(block, "\n") {
		if line != "" && !strings.HasPrefix(line, "$ ") {
			kept = append(kept, line)
		}
	}
	return normalize(strings.Join(kept, ""))
}
