package main

// The watch screen as a learner sees it: the runner, built for this
// machine, in a real terminal (a tmux pane), read back with capture-pane.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paneTimeout bounds each wait for the pane to show something: the first
// screen runs every exercise's tests.
const paneTimeout = 90 * time.Second

// terminal is a tmux server of the test's own, with one pane.
type terminal struct {
	t    *testing.T
	tmux string
	sock string
	code string // the file the pane's shell writes the exit code to
}

// newTerminal starts a 100×40 tmux pane that runs command in dir, with
// env. When the command ends, the pane's shell writes its exit code to a
// file and signals the tmux channel "exited"; the pane stays open, to be
// read.
func newTerminal(t *testing.T, dir string, env map[string]string, command ...string) *terminal {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("needs tmux for a real terminal (apt-get install tmux): the watch screen is tested without one in testdata/watch_tests_again_on_a_save_and_moves_on.txtar")
	}
	term := &terminal{t: t, tmux: tmux, sock: filepath.Join(dir, "tmux.sock"), code: filepath.Join(dir, "exit-code")}
	sh := []string{"env"}
	for k, v := range env {
		sh = append(sh, k+"="+quote(v))
	}
	for _, c := range command {
		sh = append(sh, quote(c))
	}
	// The shell survives the Ctrl+C meant for the command (a trap that
	// runs something is not inherited, unlike one that ignores), to
	// report how the command ended.
	script := "trap true INT; " + strings.Join(sh, " ") + "; echo $? > " + quote(term.code) +
		"; " + quote(tmux) + " -S " + quote(term.sock) + " wait-for -S exited"
	conf := filepath.Join(dir, "tmux.conf")
	require.NoError(t, os.WriteFile(conf, []byte("set -g remain-on-exit on\n"), 0o644))
	term.run("-f", conf, "new-session", "-d", "-s", "w", "-x", "100", "-y", "40", "-c", dir, script)
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", term.sock, "kill-server").Run() })
	return term
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (term *terminal) run(args ...string) string {
	term.t.Helper()
	out, err := exec.Command(term.tmux, append([]string{"-S", term.sock}, args...)...).CombinedOutput()
	require.NoError(term.t, err, "tmux %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// screen is what the pane shows now; with escapes, its colours too.
func (term *terminal) screen(escapes bool) string {
	args := []string{"capture-pane", "-p", "-t", "w"}
	if escapes {
		args = append(args, "-e")
	}
	return term.run(args...)
}

// waitFor reads the pane until it shows want, or fails after paneTimeout.
// tmux tells no one when a pane changes: reading it every 50 ms is the way.
func (term *terminal) waitFor(want string) string {
	term.t.Helper()
	deadline := time.Now().Add(paneTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := term.screen(false)
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal did not show %q within %v; it shows:\n%s", want, paneTimeout, s)
		}
		<-tick.C
	}
}

// exitCode waits, at most paneTimeout, for the pane's command to end, and
// returns its exit code.
func (term *terminal) exitCode() string {
	term.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), paneTimeout)
	defer cancel()
	if err := exec.CommandContext(ctx, term.tmux, "-S", term.sock, "wait-for", "exited").Run(); err != nil {
		term.t.Fatalf("the command in the terminal did not end within %v (%v); it shows:\n%s", paneTimeout, err, term.screen(false))
	}
	code, err := os.ReadFile(term.code)
	require.NoError(term.t, err)
	return strings.TrimSpace(string(code))
}

// throwawayCourse builds the runner and a course of two exercises, both
// as shipped, and returns the runner, the course's folder and the
// environment for the go commands the runner runs.
func throwawayCourse(t *testing.T) (bin, dir string, env map[string]string) {
	t.Helper()
	env = needGo(t)
	dir = t.TempDir()
	require.NoError(t, copyCourse(repoRoot(t), dir))
	starter, ok := shippedStarters()[solvedExercise]
	require.True(t, ok)
	require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(solvedExercise), starterFile), starter, 0o644))
	bin = filepath.Join(dir, "workshop")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	env["GOPROXY"], env["GOFLAGS"], env["GOTOOLCHAIN"], env["GOWORK"] = "off", "-mod=readonly", "local", "off"
	env[stateEnv] = filepath.Join(dir, "state.json")
	return bin, dir, env
}

func TestWatchRedrawsOneScreenInATerminalMovesOnAndStopsOnCtrlC(t *testing.T) {
	bin, dir, env := throwawayCourse(t)
	term := newTerminal(t, dir, env, bin, "watch")

	s := term.waitFor("Watching 04-accept/exercise-your-address")
	assert.Contains(t, s, "socketsteps workshop · 0/2 done")

	require.NoError(t, solve(filepath.Join(dir, filepath.FromSlash(solvedExercise))))
	s = term.waitFor("Watching 05-loop/exercise-fix-the-spin")
	// Redrawn, not scrolled: the screen starts at the top of the pane,
	// and the one before it is gone.
	lines := strings.Split(s, "\n")
	assert.Equal(t, "socketsteps workshop · 1/2 done", lines[0], "the first line of the terminal:\n%s", s)
	assert.Equal(t, 1, strings.Count(s, "socketsteps workshop ·"), "one screen in the terminal:\n%s", s)
	assert.Contains(t, s, "✓ 04-accept/exercise-your-address passes. Next: 05-loop/exercise-fix-the-spin.")
	assert.NotContains(t, s, "0/2 done")

	term.run("send-keys", "-t", "w", "C-c")
	assert.Equal(t, "0", term.exitCode(), "the exit code after Ctrl+C")
	assert.Contains(t, term.screen(false), "Stopped watching.")
}

func TestColourOnATerminalButNeverWithNoColor(t *testing.T) {
	bin, dir, env := throwawayCourse(t)
	for _, noColor := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			if noColor {
				e["NO_COLOR"] = "1"
			}
			term := newTerminal(t, t.TempDir(), e, "sh", "-c", "cd "+quote(dir)+" && "+quote(bin))
			require.Equal(t, "0", term.exitCode())
			s := term.screen(true)
			require.Contains(t, s, "Next: ")
			if noColor {
				assert.NotContains(t, s, "\x1b[", "NO_COLOR is set, yet the terminal shows colours:\n%q", s)
			} else {
				assert.Contains(t, s, "\x1b[", "a terminal without NO_COLOR shows no colours:\n%q", s)
			}
		})
	}
}
