package main

// Running an exercise's tests: progress is what `go test -tags exercise`
// says, never a mark the learner sets.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
)

// result is what one `go test` of one exercise said.
type result struct {
	Passed      bool
	TestFailed  bool     // at least one test reported FAIL
	BuildFailed bool     // the package (or its tests) did not compile
	Ran         int      // tests that passed or failed, not skipped
	FirstFail   string   // the first test that failed, "TestX" or "TestX/sub"
	Message     []string // that test's output, shortened; or the build errors
	Output      string   // everything go test printed, as text
}

// testRun says how to run the tests.
type testRun struct {
	tags     string // "exercise" (the learner's starter) or "solution"
	fresh    bool   // -count=1: run even when go test has the result cached
	failFast bool   // stop the package at its first failing test
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string // Go 1.24 and later: the package whose build failed
}

// goTest runs the tests of one exercise. A run that cannot start, or that
// ctx ends, is an error; a failing test is a result.
func (c *cli) goTest(ctx context.Context, root string, e exercise, run testRun) (result, error) {
	args := []string{"test", "-json", "-tags", run.tags}
	if run.fresh {
		args = append(args, "-count=1")
	}
	if run.failFast {
		// One failing test is enough to say "not yet"; a learner's
		// program that hangs is stopped by the tests' own deadlines,
		// and by this one if they have none.
		args = append(args, "-failfast", "-timeout=2m")
	}
	args = append(args, e.pkg())
	cmd := exec.CommandContext(ctx, c.goCmd(), args...)
	cmd.Dir = root
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	var exitErr *exec.ExitError
	if errors.Is(err, exec.ErrNotFound) {
		return result{}, fmt.Errorf("no go command on the PATH: the runner runs go test, so it needs Go installed (%w)", err)
	}
	if err != nil && !errors.As(err, &exitErr) {
		return result{}, fmt.Errorf("go test %s: %w", e.Name, err)
	}
	r := parseTestJSON(stdout.Bytes(), stderr.String())
	r.Passed = err == nil && r.Passed
	if !r.Passed && !r.TestFailed && len(r.Message) == 0 {
		r.Message = shorten(strings.Split(strings.TrimSpace(r.Output), "\n"), maxMessageLines)
	}
	return r, nil
}

// goCmd is the go command, found on PATH as a learner's shell finds it.
func (c *cli) goCmd() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // exec says it is missing, and the error says where
}

// maxMessageLines is how much of a failing test's output the runner shows:
// the first lines say what failed; `go test -v` shows the rest.
const maxMessageLines = 8

// maxMessageWidth is the longest line of a message the runner shows whole.
const maxMessageWidth = 160

// parseTestJSON reads the output of `go test -json` for one package.
// stderr holds what older Go versions print there (build errors).
func parseTestJSON(stdout []byte, stderr string) result {
	var r result
	var text strings.Builder
	testOutput := map[string][]string{}
	var build []string
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			text.Write(line) // not an event: keep it as it came
			text.WriteByte('\n')
			continue
		}
		switch ev.Action {
		case "output":
			text.WriteString(ev.Output)
			if ev.Test != "" {
				testOutput[ev.Test] = append(testOutput[ev.Test], strings.TrimRight(ev.Output, "\r\n"))
			}
			if strings.Contains(ev.Output, "[build failed]") || strings.Contains(ev.Output, "[setup failed]") {
				r.BuildFailed = true
			}
		case "build-output":
			text.WriteString(ev.Output)
			if !strings.HasPrefix(ev.Output, "# ") { // "# pkg [pkg.test]": which package, known
				build = append(build, strings.TrimRight(ev.Output, "\r\n"))
			}
		case "build-fail":
			r.BuildFailed = true
		case "fail":
			if ev.Test != "" {
				r.Ran++
				r.TestFailed = true
				if r.FirstFail == "" {
					r.FirstFail = ev.Test
				}
			} else if ev.FailedBuild != "" {
				r.BuildFailed = true
			}
		case "pass":
			if ev.Test == "" {
				r.Passed = true
			} else {
				r.Ran++
			}
		}
	}
	if stderr != "" {
		text.WriteString(stderr)
		if !r.TestFailed {
			for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
				if !strings.HasPrefix(l, "# ") {
					build = append(build, l)
				}
			}
		}
	}
	r.Output = text.String()
	switch {
	case r.FirstFail != "":
		r.Message = shorten(testMessage(testOutput[r.FirstFail]), maxMessageLines)
	case len(build) > 0:
		r.Message = shorten(build, maxMessageLines)
	}
	if r.BuildFailed {
		r.Passed = false
	}
	return r
}

// testMessage keeps what a learner needs of a failing test's output: the
// file:line and the message, without go test's framing and without
// testify's "Error Trace" and "Test" lines, which repeat what the runner
// already says.
func testMessage(output []string) []string {
	var out []string
	label := ""
	for _, l := range output {
		l = strings.TrimPrefix(l, "    ") // go test's indentation of a test's log
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, "=== ") || strings.HasPrefix(trimmed, "--- FAIL") ||
			strings.HasPrefix(trimmed, "--- PASS") || strings.HasPrefix(trimmed, "--- SKIP") {
			continue
		}
		if strings.HasPrefix(trimmed, "\t") { // testify: "\tLabel:\tvalue"
			cells := strings.SplitN(trimmed[1:], "\t", 2)
			if l := strings.TrimSpace(cells[0]); l != "" {
				label = strings.TrimSuffix(l, ":")
			}
			if label == "Error Trace" || label == "Test" || len(cells) < 2 {
				continue
			}
			if v := strings.TrimRight(strings.TrimLeft(cells[1], "\t"), " "); v != "" {
				out = append(out, "  "+v)
			}
			continue
		}
		label = ""
		if strings.HasPrefix(trimmed, "panic: ") {
			// The panic's message says what went wrong; its stack,
			// which follows, is for go test -v.
			return append(out, trimmed)
		}
		switch s := strings.TrimRight(trimmed, " "); {
		case s == "":
		case trimmed != l: // a continued message: keep it apart
			out = append(out, "  "+s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// shorten keeps the first n lines, saying how many it left out, and cuts
// a line longer than maxMessageWidth.
func shorten(lines []string, n int) []string {
	var kept []string
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if r := []rune(l); len(r) > maxMessageWidth {
			l = string(r[:maxMessageWidth-1]) + "…"
		}
		kept = append(kept, l)
	}
	if len(kept) <= n {
		return kept
	}
	return append(kept[:n:n], fmt.Sprintf("… (%d more lines)", len(kept)-n))
}

// testAll runs the tests of every exercise, a few go test processes at a
// time, and returns the results in the course's order. One process per
// exercise, so that -failfast stops each exercise at its own first
// failure (go test stops every package at the first failure of any).
func (c *cli) testAll(ctx context.Context, root string, course []exercise, run testRun) ([]result, error) {
	results := make([]result, len(course))
	err := c.pool(ctx, len(course), func(i int) error {
		var err error
		results[i], err = c.goTest(ctx, root, course[i], run)
		return err
	})
	return results, err
}

// pool calls do(0) to do(n-1), as many at a time as there are CPUs (two
// at least: go test waits on its tests as much as it computes), and
// returns the first error. It stops starting new calls once ctx ends.
func (c *cli) pool(ctx context.Context, n int, do func(i int) error) error {
	errs := make([]error, n)
	workers := runtime.NumCPU()
	if workers < 2 {
		workers = 2
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = do(i)
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, err := range errs {
		if err != nil {
			return err // the first: the others are most likely the same
		}
	}
	return nil
}
