package main

// The command line, tested with testscript (testdata/*.txtar) on a
// throwaway course: a temporary module holding copies of two real
// exercises, 04-accept/exercise-your-address solved (its solution copied
// over its starter) and 05-loop/exercise-fix-the-spin as shipped. The
// scripts run the real go test on them, so they need the go command and
// the module cache that `go test ./...` has already filled; no network
// (GOPROXY=off).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("go"); err != nil {
		// No go command: the scripts, which run go test, skip (see
		// needGo), so testscript need not set up its folder of
		// commands. That is the case of the Windows test binaries run
		// under Wine in CI, where removing that folder afterwards would
		// fail (Wine 8.0 lacks FileDispositionInformationEx, see
		// .ci/wine/skips) and fail the whole package with it.
		os.Exit(m.Run())
	}
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"workshop": func() int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMain(ctx, os.Args[1:])
		},
	}))
}

// The two exercises of the throwaway course.
const (
	solvedExercise   = "04-accept/exercise-your-address"
	unsolvedExercise = "05-loop/exercise-fix-the-spin"
)

// scriptsTimeout bounds the scripts, all together: the go test runs inside
// them compile on a busy machine (CI runs every package at once, with
// -race), but never take this long. go test's own -timeout, if sooner,
// bounds them too.
const scriptsTimeout = 8 * time.Minute

func TestEveryCommandDoesWhatItsScriptSays(t *testing.T) {
	goEnv := needGo(t)
	repo := repoRoot(t)
	deadline := time.Now().Add(scriptsTimeout)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second) // time left to report
	}
	testscript.Run(t, testscript.Params{
		Dir:      "testdata",
		Deadline: deadline,
		Setup: func(env *testscript.Env) error {
			if err := copyCourse(repo, env.WorkDir); err != nil {
				return err
			}
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			env.Setenv("GOPROXY", "off") // no network, ever
			env.Setenv("GOFLAGS", "-mod=readonly")
			env.Setenv("GOTOOLCHAIN", "local")
			env.Setenv("GOWORK", "off")
			env.Setenv(stateEnv, filepath.Join(env.WorkDir, "state", "workshop.json"))
			env.Values[watchKey{}] = &watchRun{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"solve":   cmdSolve,
			"shipped": cmdShipped,
			"watch":   cmdWatch,
		},
	})
}

// needGo skips the test where there is no go command to run the
// exercises' tests (the Windows test binaries under Wine in CI), and
// returns the go environment the scripts need: the build and module
// caches, since the scripts' HOME is a place that does not exist.
func needGo(t *testing.T) map[string]string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command to run the exercises' tests: %v", err)
	}
	env := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT"} {
		out, err := exec.Command(gobin, "env", k).Output()
		if err != nil {
			t.Skipf("needs a working go command (go env %s: %v)", k, err)
		}
		env[k] = strings.TrimSpace(string(out))
	}
	return env
}

// repoRoot is the repository this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// copyCourse makes dst a throwaway course: the repository's go.mod and
// go.sum, and the two exercises' README.md and .go files, with the
// solution of solvedExercise copied over its starter. Files the script
// itself brings (a README with hints of its own) are kept.
func copyCourse(repo, dst string) error {
	files := []string{"go.mod", "go.sum"}
	for _, ex := range []string{solvedExercise, unsolvedExercise} {
		matches, err := filepath.Glob(filepath.Join(repo, filepath.FromSlash(ex), "*"))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if strings.HasSuffix(m, ".go") || filepath.Base(m) == "README.md" {
				files = append(files, filepath.ToSlash(strings.TrimPrefix(m, repo+string(filepath.Separator))))
			}
		}
	}
	for _, f := range files {
		to := filepath.Join(dst, filepath.FromSlash(f))
		if _, err := os.Stat(to); err == nil {
			continue // the script's own
		}
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(to, data, 0o666); err != nil {
			return err
		}
	}
	return solve(filepath.Join(dst, filepath.FromSlash(solvedExercise)))
}

// solve copies an exercise's solution over its starter, with the
// starter's build constraint: the exercise solved as a learner would.
func solve(dir string) error {
	sol, err := os.ReadFile(filepath.Join(dir, "solution.go"))
	if err != nil {
		return err
	}
	solved := bytes.Replace(sol, []byte("//go:build solution\n"), []byte("//go:build !solution\n"), 1)
	if bytes.Equal(solved, sol) {
		return fmt.Errorf("%s/solution.go does not start with //go:build solution", dir)
	}
	return os.WriteFile(filepath.Join(dir, starterFile), solved, 0o666)
}

// solve NAME: solve the exercise in place, as a learner saving their work.
func cmdSolve(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: solve NAME")
	}
	ts.Check(solve(ts.MkAbs(filepath.FromSlash(args[0]))))
}

// shipped NAME: the exercise's starter.go is byte for byte the one the
// runner has built in, which is the repository's (see
// TestEmbeddedStartersAreTheShippedOnes).
func cmdShipped(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: shipped NAME")
	}
	want, ok := shippedStarters()[args[0]]
	if !ok {
		ts.Fatalf("the runner has no starter for %s", args[0])
	}
	got, err := os.ReadFile(ts.MkAbs(filepath.Join(filepath.FromSlash(args[0]), starterFile)))
	ts.Check(err)
	if same := bytes.Equal(got, want); same == neg {
		ts.Fatalf("%s/starter.go is the shipped one: %v, want %v", args[0], same, !neg)
	}
}

// watchTimeout bounds one watch in a script, and each wait for its screen.
const (
	watchTimeout = 3 * time.Minute
	waitTimeout  = 90 * time.Second
)

// watchRun is a watch running in-process, started by a script.
type watchRun struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	seen   int // how far "watch wait" has read
}

type watchKey struct{}

// watch start [NAME] | watch wait REGEXP | watch stop: drive the runner's
// watch mode in this process, with a deadline. "wait" blocks until the
// screen shows REGEXP after what the last wait matched; "stop" is Ctrl+C,
// after which watch must end without an error.
func cmdWatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: watch start [NAME] | wait REGEXP | stop")
	}
	w, _ := ts.Value(watchKey{}).(*watchRun)
	switch args[0] {
	case "start":
		if w.running() {
			ts.Fatalf("watch is already running")
		}
		out := newSyncBuffer()
		var env []string
		for _, k := range []string{"PATH", "HOME", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT",
			"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN", "GOWORK",
			stateEnv, pollEnv} {
			if v := ts.Getenv(k); v != "" {
				env = append(env, k+"="+v)
			}
		}
		c := &cli{dir: ts.MkAbs("."), stdin: strings.NewReader(""), stdout: out, stderr: out,
			env: env, getenv: ts.Getenv}
		ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
		*w = watchRun{out: out, cancel: cancel, done: make(chan error, 1)}
		go func() { w.done <- c.run(ctx, append([]string{"watch"}, args[1:]...)) }()
		ts.Defer(func() {
			if w.running() { // a script that failed midway: stop and wait
				cancel()
				<-w.done
			}
		})
	case "wait":
		if !w.running() {
			ts.Fatalf("watch is not running")
		}
		if len(args) != 2 {
			ts.Fatalf("usage: watch wait REGEXP")
		}
		re, err := regexp.Compile(args[1])
		ts.Check(err)
		end, ok := w.out.waitFor(re, w.seen, waitTimeout)
		if !ok {
			ts.Fatalf("watch did not show %q within %v; it showed:\n%s", args[1], waitTimeout, w.out.String())
		}
		w.seen = end
	case "stop":
		if !w.running() {
			ts.Fatalf("watch is not running")
		}
		w.cancel()
		select {
		case err := <-w.done:
			w.done = nil
			ts.Logf("watch showed:\n%s", w.out.String())
			if err != nil {
				ts.Fatalf("watch ended with an error after Ctrl+C: %v", err)
			}
		case <-time.After(waitTimeout):
			ts.Fatalf("watch did not stop within %v of Ctrl+C", waitTimeout)
		}
	default:
		ts.Fatalf("usage: watch start [NAME] | wait REGEXP | stop")
	}
}

func (w *watchRun) running() bool { return w.done != nil }

// syncBuffer is the output of a watch, read while it is written.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until re matches the output after offset from, and
// returns where the match ends.
func (b *syncBuffer) waitFor(re *regexp.Regexp, from int, timeout time.Duration) (int, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		loc := re.FindIndex(b.buf.Bytes()[from:])
		changed := b.changed
		b.mu.Unlock()
		if loc != nil {
			return from + loc[1], true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return 0, false
		}
	}
}
