package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
)

// progress runs every exercise's tests as the learner's starter stands.
// go test caches what passed, so done exercises cost next to nothing;
// -failfast stops the others at their first failure.
func (c *cli) progress(ctx context.Context, root string, course []exercise) ([]result, error) {
	if c.terminal { // a line to look at while it runs, erased after
		fmt.Fprintf(c.stdout, "Running the tests of %d exercises…", len(course))
		defer fmt.Fprint(c.stdout, "\r\x1b[K")
	}
	return c.testAll(ctx, root, course, testRun{tags: "exercise", failFast: true})
}

// countDone is how many results passed.
func countDone(results []result) int {
	n := 0
	for _, r := range results {
		if r.Passed {
			n++
		}
	}
	return n
}

// nextTodo is the first exercise that does not pass, starting at from and
// going round the course; -1 when every exercise passes.
func nextTodo(results []result, from int) int {
	for k := range results {
		i := (from + k) % len(results)
		if !results[i].Passed {
			return i
		}
	}
	return -1
}

// status prints where the learner is: the next exercise to solve, what it
// asks, its first failing test, and the progress.
func (c *cli) status(ctx context.Context, root string, course []exercise) error {
	results, err := c.progress(ctx, root, course)
	if err != nil {
		return err
	}
	c.screen(c.stdout, course, results, nextTodo(results, 0), "")
	return nil
}

// screen writes the status screen: the one that `go run ./docs/workshop`
// prints and that watch redraws. cur is the exercise to show, -1 for none
// left; note, if any, is a line for the top (what just happened).
func (c *cli) screen(w io.Writer, course []exercise, results []result, cur int, note string) {
	done := countDone(results)
	fmt.Fprintf(w, "%s · %s\n", c.bold("socketsteps workshop"), c.progressText(done, len(course)))
	if note != "" {
		fmt.Fprintf(w, "%s\n", note)
	}
	fmt.Fprintln(w)
	if cur < 0 {
		fmt.Fprintf(w, "%s\n", c.green(fmt.Sprintf("Every exercise passes: %d/%d done. Well done!", done, len(course))))
		fmt.Fprintln(w, "`go run ./docs/workshop solution NAME` shows a reference solution to compare with yours.")
		return
	}
	e, r := course[cur], results[cur]
	fmt.Fprintf(w, "Next: %s  %s\n", c.bold(e.Name), stars(e.Difficulty))
	fmt.Fprintf(w, "  %s\n", e.Task)
	if about := wrap(e.About, 76); len(about) > 0 {
		if len(about) > 4 {
			about = append(about[:4:4], "… (the rest is in its README.md)")
		}
		fmt.Fprintln(w)
		for _, l := range about {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintln(w)
	switch {
	case r.BuildFailed:
		fmt.Fprintf(w, "%s\n", c.red("It does not build:"))
	case r.FirstFail != "":
		fmt.Fprintf(w, "%s %s\n", c.red("Not yet:"), r.FirstFail)
	default:
		fmt.Fprintf(w, "%s\n", c.red("Not yet:"))
	}
	for _, l := range r.Message {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Edit %s, then:\n", e.Name+"/"+starterFile)
	if !c.watching {
		fmt.Fprintf(w, "  go run ./docs/workshop watch        checks again on every save\n")
	}
	fmt.Fprintf(w, "  go run ./docs/workshop hint %s   a hint (%d in its README)\n", shortName(course, e), len(e.Hints))
	fmt.Fprintf(w, "  go test -tags exercise %s   every test, in full\n", e.pkg())
}

// shortName is the shortest name that findExercise takes for e: "quit"
// for 04-accept/exercise-quit, unless another lesson has an exercise-quit.
func shortName(course []exercise, e exercise) string {
	short := strings.TrimPrefix(path.Base(e.Name), "exercise-")
	if found, err := findExercise(course, short); err == nil && found.Name == e.Name {
		return short
	}
	return e.Name
}

func (c *cli) progressText(done, total int) string {
	s := fmt.Sprintf("%d/%d done", done, total)
	if done == total {
		return c.green(s)
	}
	return s
}

// stars writes a difficulty as the READMEs do: ★★☆.
func stars(n int) string {
	if n < 0 || n > 3 {
		return "???"
	}
	return strings.Repeat("★", n) + strings.Repeat("☆", 3-n)
}

func (c *cli) paint(code, s string) string {
	if !c.colour {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (c *cli) bold(s string) string  { return c.paint("1", s) }
func (c *cli) green(s string) string { return c.paint("32", s) }
func (c *cli) red(s string) string   { return c.paint("31", s) }

// listEntry is one exercise in `list --json`.
type listEntry struct {
	Name       string `json:"name"`
	Lesson     string `json:"lesson"`
	Difficulty int    `json:"difficulty"`
	Status     string `json:"status"` // "done" or "todo"
	Task       string `json:"task"`
}

// listJSON is the whole of `list --json`, for a workshop's autograder.
type listJSON struct {
	Done      int         `json:"done"`
	Total     int         `json:"total"`
	Exercises []listEntry `json:"exercises"`
}

// list prints every exercise with its status, as a table or as JSON.
func (c *cli) list(ctx context.Context, root string, course []exercise, asJSON bool) error {
	progress := c.progress
	if asJSON { // for a program: nothing but the JSON, even on a terminal
		progress = func(ctx context.Context, root string, course []exercise) ([]result, error) {
			return c.testAll(ctx, root, course, testRun{tags: "exercise", failFast: true})
		}
	}
	results, err := progress(ctx, root, course)
	if err != nil {
		return err
	}
	out := listJSON{Done: countDone(results), Total: len(course), Exercises: []listEntry{}}
	for i, e := range course {
		status := "todo"
		if results[i].Passed {
			status = "done"
		}
		out.Exercises = append(out.Exercises, listEntry{e.Name, e.Lesson, e.Difficulty, status, e.Task})
	}
	if asJSON {
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", data)
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "status\tlesson\texercise\tdifficulty\ttask")
	for _, x := range out.Exercises {
		status := c.red(x.Status)
		if x.Status == "done" {
			status = c.green(x.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", status, x.Lesson, filepath.Base(x.Name), stars(x.Difficulty), x.Task)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "\n%s\n", c.progressText(out.Done, out.Total))
	return err
}

// hint shows the exercise's next hint, and remembers that it did. Without
// a name, the exercise is the next one to solve.
func (c *cli) hint(ctx context.Context, root string, course []exercise, e exercise) error {
	if e.Name == "" {
		// The first exercise in course order that does not pass; the
		// ones before it are cached by go test, so this is quick.
		for _, x := range course {
			r, err := c.goTest(ctx, root, x, testRun{tags: "exercise", failFast: true})
			if err != nil {
				return err
			}
			if !r.Passed {
				e = x
				break
			}
		}
		if e.Name == "" {
			fmt.Fprintln(c.stdout, "Every exercise passes: no hint needed. Name one for its hints, as in `hint quit`.")
			return nil
		}
	}
	if len(e.Hints) == 0 {
		return fmt.Errorf("%s has no hints in its README.md", e.Name)
	}
	s, file, err := c.loadState()
	if err != nil {
		return err
	}
	shown := s.HintsShown[e.Name]
	if shown >= len(e.Hints) {
		fmt.Fprintf(c.stdout, "All %d hints for %s, already shown:\n", len(e.Hints), c.bold(e.Name))
		for i, h := range e.Hints {
			c.printHint(i, h)
		}
		fmt.Fprintf(c.stdout, "\nThat was the last. The test names say what is checked; once it passes,\n`go run ./docs/workshop solution %s` shows the reference.\n", e.Name)
		return nil
	}
	fmt.Fprintf(c.stdout, "Hint %d of %d for %s:\n", shown+1, len(e.Hints), c.bold(e.Name))
	c.printHint(shown, e.Hints[shown])
	s.HintsShown[e.Name] = shown + 1
	return saveState(file, s)
}

func (c *cli) printHint(i int, h string) {
	for j, l := range wrap(h, 76) {
		prefix := "   "
		if j == 0 {
			prefix = fmt.Sprintf("%d. ", i+1)
		}
		fmt.Fprintf(c.stdout, "  %s%s\n", prefix, l)
	}
}

// resetProgress forgets which hints were shown. Nothing else needs
// forgetting: whether an exercise is done is what its tests say.
func (c *cli) resetProgress() error {
	file, err := c.statePath()
	if err != nil {
		return err
	}
	err = os.Remove(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(c.stdout, "No hints to forget (%s does not exist).\n", file)
	case err != nil:
		return fmt.Errorf("forget the hints: %w", err)
	default:
		fmt.Fprintf(c.stdout, "Forgot which hints were shown (removed %s).\n", file)
	}
	fmt.Fprintln(c.stdout, "Progress is what the tests say: `reset NAME` puts an exercise's starter back as shipped.")
	return nil
}

// reset puts the exercise's starter back as shipped, after asking.
func (c *cli) reset(ctx context.Context, root string, e exercise, yes bool) error {
	shipped, from, err := c.shippedStarter(ctx, root, e)
	if err != nil {
		return err
	}
	file := filepath.Join(e.dir(root), starterFile)
	name := e.Name + "/" + starterFile
	current, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err == nil && bytes.Equal(current, shipped) {
		fmt.Fprintf(c.stdout, "%s is already as shipped: nothing to reset.\n", name)
		return nil
	}
	if !yes {
		fmt.Fprintf(c.stdout, "Put %s back as shipped? Your changes to it will be lost. [y/N] ", name)
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(c.stdout, "\nNothing changed.")
			return nil
		}
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := os.WriteFile(file, shipped, mode); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	fmt.Fprintf(c.stdout, "Reset %s as shipped (from %s).\n", name, from)
	return nil
}

// solution prints the reference solution, once the learner's own passes:
// reading it before trying teaches less. --force is for instructors.
func (c *cli) solution(ctx context.Context, root string, e exercise, force bool) error {
	if !force {
		r, err := c.goTest(ctx, root, e, testRun{tags: "exercise", failFast: true})
		if err != nil {
			return err
		}
		if !r.Passed {
			return fmt.Errorf("%s does not pass yet: solve it first (`go run ./docs/workshop hint %s` helps); instructors: --force", e.Name, e.Name)
		}
	}
	data, err := os.ReadFile(filepath.Join(e.dir(root), "solution.go"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s\n\n", c.bold("// "+e.Name+"/solution.go, the reference solution"))
	_, err = c.stdout.Write(data)
	return err
}

// check proves, for each exercise, that the reference solution passes
// and that the starter fails by a test failure: a starter whose tests
// pass tests nothing, and one that does not build teaches nothing. It
// runs a few exercises at a time and prints in course order.
func (c *cli) check(ctx context.Context, root string, course []exercise) error {
	type outcome struct {
		lines []string
		bad   int
	}
	outcomes := make([]*outcome, len(course))
	var mu sync.Mutex
	printed := 0
	checkOne := func(i int) error {
		e := course[i]
		o := &outcome{}
		sol, err := c.goTest(ctx, root, e, testRun{tags: "solution", fresh: true})
		if err != nil {
			return err
		}
		switch {
		case sol.Passed && sol.Ran == 0:
			o.lines = append(o.lines, "skip solution: every test skips on this platform: "+e.Name)
		case sol.Passed:
			o.lines = append(o.lines, "ok   solution passes: "+e.Name)
		default:
			o.bad++
			o.lines = append(o.lines, "FAIL solution does not pass: "+e.Name)
			o.lines = append(o.lines, tail(sol.Output, 20)...)
		}
		st, err := c.goTest(ctx, root, e, testRun{tags: "exercise", fresh: true, failFast: true})
		if err != nil {
			return err
		}
		switch {
		case st.Passed && st.Ran == 0: // as on Windows, for 07-select's exercises
			o.lines = append(o.lines, "skip starter: every test skips on this platform: "+e.Name)
		case st.Passed:
			o.bad++
			o.lines = append(o.lines, "FAIL starter passes its own tests (they test nothing): "+e.Name)
		case st.TestFailed && !st.BuildFailed:
			o.lines = append(o.lines, fmt.Sprintf("ok   starter fails its tests: %s (%s)", e.Name, st.FirstFail))
		default:
			o.bad++
			o.lines = append(o.lines, "FAIL starter did not fail by a test failure (build error or crash?): "+e.Name)
			o.lines = append(o.lines, tail(st.Output, 20)...)
		}
		mu.Lock()
		defer mu.Unlock()
		outcomes[i] = o
		for printed < len(outcomes) && outcomes[printed] != nil {
			for _, l := range outcomes[printed].lines {
				fmt.Fprintln(c.stdout, l)
			}
			printed++
		}
		return nil
	}
	if err := c.pool(ctx, len(course), checkOne); err != nil {
		return err
	}
	bad := 0
	for _, o := range outcomes {
		bad += o.bad
	}
	if bad > 0 {
		return fmt.Errorf("check: %d of %d checks failed (see above)", bad, 2*len(course))
	}
	fmt.Fprintf(c.stdout, "check: %d of %d exercises: every solution passes, every starter fails its tests\n", len(course), len(course))
	return nil
}

// tail returns the last n lines of text, indented.
func tail(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return lines
}
