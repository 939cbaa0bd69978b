//go:build unix

package docs

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every step of a server lesson is a server like its lesson: it takes
// -addr, so port 0 works, and its first line is the address it really
// listens on. Steps need not stop cleanly (the early ones do not even
// try), so each is killed once its first line is read.
func TestEveryServerStepPrintsItsAddressFirst(t *testing.T) {
	root := repoRoot(t)
	for lesson, network := range serverLessons {
		steps := ladder(t, root, lesson)
		if len(steps) == 0 {
			continue
		}
		t.Run(lesson, func(t *testing.T) {
			if lesson == "07-select" && runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
				t.Skip("07-select needs Linux or macOS")
			}
			bins := buildSteps(t, root, steps)
			for i, bin := range bins {
				t.Run(filepath.Base(steps[i]), func(t *testing.T) {
					line, err := firstLineOf(t, bin, "-addr", "127.0.0.1:0")
					require.NoError(t, err)
					addr, ok := strings.CutPrefix(line, "listening on ")
					require.True(t, ok, "first line should be %q, got %q", "listening on ADDR", line)
					_, port, err := net.SplitHostPort(addr)
					require.NoError(t, err, "first line should give host:port, got %q", line)
					assert.NotEqual(t, "0", port, "first line should give the real port, got %q", line)
					if network == "tcp" {
						conn, err := net.DialTimeout("tcp", addr, contractWait)
						require.NoError(t, err, "the printed address does not answer")
						conn.Close()
					}
				})
			}
		})
	}
}

// buildSteps builds a lesson's steps with one go build (their folder
// names differ within a lesson) and returns their binaries in order.
func buildSteps(t *testing.T, root string, steps []string) []string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range steps {
		args = append(args, "./"+filepath.ToSlash(rel(root, s)))
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	bins := make([]string, len(steps))
	for i, s := range steps {
		bins[i] = filepath.Join(dir, filepath.Base(s))
	}
	return bins
}

// firstLineOf starts a program, returns its first line on stdout, and
// kills it.
func firstLineOf(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() { // keep draining: a step must never block on its log
		}
	}()
	select {
	case line, ok := <-first:
		if !ok {
			return "", fmt.Errorf("%s printed nothing before it ended", filepath.Base(bin))
		}
		return line, nil
	case <-time.After(contractWait):
		return "", fmt.Errorf("%s printed no line within %v", filepath.Base(bin), contractWait)
	}
}
