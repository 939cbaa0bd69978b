//go:build unix

package docs

// The command-line contract that the top-level README promises for every
// lesson, checked on the real programs: each lesson is built once, run as
// its own process, and judged by what a user sees (its first line, its
// stderr, its exit code), not by calling its functions. The lessons' own
// tests cover what each program does; these cover main() itself.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

var (
	allLessons = []string{"01-create", "02-connect", "03-bind-listen", "04-accept", "05-loop",
		"06-goroutines", "07-select", "08-socketserver", "09-udp"}
	// The lessons that listen, and the network each listens on.
	serverLessons = map[string]string{"03-bind-listen": "tcp", "04-accept": "tcp", "05-loop": "tcp",
		"06-goroutines": "tcp", "07-select": "tcp", "08-socketserver": "tcp", "09-udp": "udp"}
	// The lessons with a -client mode.
	clientLessons = []string{"04-accept", "05-loop", "06-goroutines", "07-select", "08-socketserver", "09-udp"}
)

const contractWait = 10 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// lessonBinary builds every lesson once per test process and returns the
// path of one. The directory is removed when the test binary exits.
func lessonBinary(t *testing.T, lesson string) string {
	t.Helper()
	buildOnce.Do(func() {
		root := repoRoot(t)
		binDir, buildErr = os.MkdirTemp("", "socketsteps-bin-")
		if buildErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, l := range allLessons {
			args = append(args, "./"+l)
		}
		cmd := exec.Command(goTool, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, lesson)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// result is what a user sees of one run.
type result struct {
	stdout, stderr string
	code           int
}

func runLesson(t *testing.T, lesson string, stdin string, args ...string) result {
	t.Helper()
	bin := lessonBinary(t, lesson)
	ctx, cancel := context.WithTimeout(context.Background(), contractWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s %v did not finish", lesson, args)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		require.NoError(t, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func TestEveryLessonRejectsAnUnknownFlagWithExitCode2(t *testing.T) {
	for _, lesson := range allLessons {
		t.Run(lesson, func(t *testing.T) {
			r := runLesson(t, lesson, "", "-no-such-flag")
			assert.Equal(t, 2, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, "flag provided but not defined: -no-such-flag")
		})
	}
}

func TestEveryLessonPrintsHelpAndExits0(t *testing.T) {
	for _, lesson := range allLessons {
		t.Run(lesson, func(t *testing.T) {
			r := runLesson(t, lesson, "", "-h")
			assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr+r.stdout, "Usage of "+lesson)
		})
	}
}

var defaultAddr = regexp.MustCompile(`-addr host:port\n(?:.*\n)*?\s+.*\(default "([^"]+)"\)`)

func TestEveryServerDefaultsToLoopbackPort90NN(t *testing.T) {
	for lesson := range serverLessons {
		t.Run(lesson, func(t *testing.T) {
			r := runLesson(t, lesson, "", "-h")
			m := defaultAddr.FindStringSubmatch(r.stderr)
			require.NotNil(t, m, "no -addr default in the usage:\n%s", r.stderr)
			assert.Equal(t, "127.0.0.1:90"+lesson[:2], m[1])
		})
	}
}

func TestEveryServerPrintsItsAddressFirstAndStopsWithExitCode0(t *testing.T) {
	for lesson, network := range serverLessons {
		for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
			t.Run(fmt.Sprintf("%s/%v", lesson, sig), func(t *testing.T) {
				t.Parallel()
				if lesson == "07-select" && runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
					t.Skip("07-select needs Linux or macOS")
				}
				cmd := exec.Command(lessonBinary(t, lesson), "-addr", "127.0.0.1:0")
				stdout, err := cmd.StdoutPipe()
				require.NoError(t, err)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				require.NoError(t, cmd.Start())
				exited := make(chan error, 1)
				go func() {
					// Read the first line, then keep draining so the
					// server never blocks on a full pipe.
					first := make(chan string, 1)
					go func() {
						sc := bufio.NewScanner(stdout)
						if sc.Scan() {
							first <- sc.Text()
						}
						close(first)
						for sc.Scan() {
						}
					}()
					line := waitLine(first)
					// 04-accept serves one client and then exits by
					// itself: a probe connection would end it before the
					// signal, which could then reach a process already on
					// its way out and kill it. Its address is checked by
					// the lesson's own tests.
					probe := network == "tcp" && lesson != "04-accept"
					exited <- checkFirstLineThenStop(cmd, probe, line, sig)
				}()
				select {
				case err := <-exited:
					require.NoError(t, err, "stderr: %s", stderr.String())
				case <-time.After(contractWait):
					cmd.Process.Kill()
					t.Fatalf("%s did not stop on %v; stderr: %s", lesson, sig, stderr.String())
				}
				assert.Equal(t, 0, cmd.ProcessState.ExitCode(), "a stopped server exits 0; stderr: %s", stderr.String())
				assert.Empty(t, stderr.String(), "a clean stop prints no error")
			})
		}
	}
}

func waitLine(ch <-chan string) string {
	select {
	case l := <-ch:
		return l
	case <-time.After(contractWait):
		return ""
	}
}

// checkFirstLineThenStop checks the first line names a real address (one
// that answers, with probe), then sends sig and waits for the process to
// end.
func checkFirstLineThenStop(cmd *exec.Cmd, probe bool, line string, sig os.Signal) error {
	addr, ok := strings.CutPrefix(line, "listening on ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("first line should be %q, got %q", "listening on ADDR", line)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("first line should give the real port, got %q", line)
	}
	if probe {
		conn, err := net.DialTimeout("tcp", addr, contractWait)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("the printed address does not answer: %w", err)
		}
		// Leave before the stop, so the server has no conversation to
		// wind down and the test stays quick.
		conn.Close()
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil // the exit code is checked by the caller
	}
	return err
}

func TestEveryServerReportsABusyAddressInOneLineAndExitsNonZero(t *testing.T) {
	for lesson, network := range serverLessons {
		t.Run(lesson, func(t *testing.T) {
			var addr string
			if network == "udp" {
				pc, err := nettest.NewLocalPacketListener("udp4")
				require.NoError(t, err)
				defer pc.Close()
				addr = pc.LocalAddr().String()
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				defer ln.Close()
				addr = ln.Addr().String()
			}
			r := runLesson(t, lesson, "", "-addr", addr)
			assert.NotEqual(t, 0, r.code)
			assertOneErrorLine(t, r.stderr, "(see docs/errors.md#eaddrinuse)")
		})
	}
}

func TestEveryClientReportsARefusedConnectionInOneLineAndExitsNonZero(t *testing.T) {
	for _, lesson := range clientLessons {
		t.Run(lesson, func(t *testing.T) {
			network := serverLessons[lesson]
			addr := closedLoopbackPort(t, network)
			r := runLesson(t, lesson, "hello\n", "-client", "-addr", addr)
			assert.NotEqual(t, 0, r.code)
			assertOneErrorLine(t, r.stderr, "(see docs/errors.md#econnrefused)")
		})
	}
}

func TestConnectingToAnUnknownHostIsOneLineAndExitsNonZero(t *testing.T) {
	// The name is under .invalid, which RFC 2606 keeps from ever
	// existing; whatever resolver the machine has says "no such host" or
	// fails, and the program must say so in one line either way.
	r := runLesson(t, "02-connect", "", "-host", "nothing-here.invalid", "-port", "80", "-timeout", "3s")
	assert.NotEqual(t, 0, r.code)
	assertOneErrorLine(t, r.stderr, "docs/errors.md#")
}

// assertOneErrorLine checks the promise of the README: a failure is one
// line on stderr, not a panic trace, and it points into the catalogue.
func assertOneErrorLine(t *testing.T, stderr, wantInside string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var errorLines []string
	for _, l := range lines {
		if strings.HasPrefix(l, "error: ") {
			errorLines = append(errorLines, l)
		}
	}
	require.Len(t, errorLines, 1, "want exactly one error line, stderr was:\n%s", stderr)
	assert.Contains(t, errorLines[0], wantInside)
	assert.NotContains(t, stderr, "panic:")
	assert.NotContains(t, stderr, "goroutine ")
}

// closedLoopbackPort returns an address on loopback where nothing listens.
func closedLoopbackPort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := nettest.NewLocalPacketListener("udp4")
		require.NoError(t, err)
		addr := pc.LocalAddr().String()
		require.NoError(t, pc.Close())
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
