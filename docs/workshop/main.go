// Command workshop runs the course's exercises as a guided course: it
// knows which exercise comes next, how far you are, and what the tests
// say. Run it from the repository's folder:
//
//	go run ./docs/workshop              the next exercise to solve, and the progress
//	go run ./docs/workshop watch        the same, again on every save, until Ctrl+C
//	go run ./docs/workshop list         every exercise and its status (--json for a grader)
//	go run ./docs/workshop hint [NAME]  the next hint
//	go run ./docs/workshop reset NAME   the starter as shipped (-y: without asking)
//	go run ./docs/workshop solution NAME  the reference solution, once yours passes
//	go run ./docs/workshop check        for instructors and CI: starters fail, solutions pass
//
// An exercise is done when `go test -tags exercise ./NN-lesson/exercise-NAME/`
// passes: the runner runs exactly that, and keeps no mark of its own. It
// remembers only which hints it showed, in a small file in the user's
// config directory. docs/workshop.md describes the exercises.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:]))
}

// runMain runs the command line and returns the exit code: 0, 1 for a
// failure (said in one line on stderr), 2 for a command line it does not
// understand.
func runMain(ctx context.Context, args []string) int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	c := &cli{
		dir:    dir,
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		env:    os.Environ(),
		getenv: os.Getenv,
	}
	c.terminal = isTerminal(os.Stdout) && os.Getenv("TERM") != "dumb"
	c.colour = c.terminal && os.Getenv("NO_COLOR") == ""
	return c.exit(c.run(ctx, args))
}

// cli is one run of the command line, with everything it touches outside
// the repository, so that tests can drive it in-process.
type cli struct {
	dir            string // where it was started: the course is the go.mod above
	stdin          io.Reader
	stdout, stderr io.Writer
	env            []string // for the go and git commands it runs
	getenv         func(string) string
	terminal       bool // stdout is a terminal: watch redraws the screen
	colour         bool // a terminal, and NO_COLOR is not set
	watching       bool // in watch mode: the screen need not suggest it
}

// usageError is a command line the runner does not understand.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: go run ./docs/workshop [command]

  (no command)       the next exercise to solve, what fails, and the progress
  watch [NAME]       the same, again on every save of the exercise, until Ctrl+C
  list [--json]      every exercise, its difficulty and its status
  hint [NAME]        the next hint for the exercise (the next to solve without NAME)
  reset NAME [-y]    put the exercise's starter.go back as shipped (-y: without asking)
  reset-progress     forget which hints were shown
  solution NAME [--force]
                     the reference solution, once your exercise passes
  check [NAME...]    for instructors and CI: every starter fails its tests, every solution passes

NAME is an exercise: 04-accept/exercise-quit, exercise-quit or quit.
`

// exit prints err, if any, and returns the exit code for it.
func (c *cli) exit(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "error: %s\n\n%s", ue.msg, usage)
		return 2
	case errors.Is(err, context.Canceled):
		return 130 // stopped with Ctrl+C: nothing went wrong
	default:
		fmt.Fprintln(c.stderr, "error:", err)
		return 1
	}
}

// run runs one command line.
func (c *cli) run(ctx context.Context, args []string) error {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, usage)
		return nil
	case "", "watch", "list", "hint", "reset", "reset-progress", "solution", "check":
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}

	var yes, force, asJSON bool
	flags := map[string]*bool{}
	switch cmd {
	case "reset":
		flags["y"], flags["yes"] = &yes, &yes
	case "solution":
		flags["force"] = &force
	case "list":
		flags["json"] = &asJSON
	}
	names, err := parseArgs(args, flags)
	if err != nil {
		return err
	}
	maxNames := map[string]int{"": 0, "watch": 1, "list": 0, "hint": 1, "reset": 1, "reset-progress": 0, "solution": 1, "check": -1}[cmd]
	needName := cmd == "reset" || cmd == "solution"
	switch {
	case needName && len(names) == 0:
		return usageError{cmd + " needs the name of an exercise, such as quit"}
	case maxNames >= 0 && len(names) > maxNames:
		return usageError{fmt.Sprintf("too many arguments for %q: %q", cmd, names)}
	}

	if cmd == "reset-progress" { // needs no course
		return c.resetProgress()
	}
	root, err := findRoot(c.dir)
	if err != nil {
		return err
	}
	course, err := loadCourse(root)
	if err != nil {
		return err
	}
	var picked []exercise
	for _, n := range names {
		e, err := findExercise(course, n)
		if err != nil {
			return err
		}
		picked = append(picked, e)
	}
	one := exercise{}
	if len(picked) == 1 {
		one = picked[0]
	}

	switch cmd {
	case "":
		return c.status(ctx, root, course)
	case "watch":
		return c.watch(ctx, root, course, one.Name)
	case "list":
		return c.list(ctx, root, course, asJSON)
	case "hint":
		return c.hint(ctx, root, course, one)
	case "reset":
		return c.reset(ctx, root, one, yes)
	case "solution":
		return c.solution(ctx, root, one, force)
	default: // "check"
		if len(picked) > 0 {
			course = picked
		}
		return c.check(ctx, root, course)
	}
}

// parseArgs splits args into names and the flags named in flags, which
// may come anywhere and be written -f or --f.
func parseArgs(args []string, flags map[string]*bool) ([]string, error) {
	var names []string
	for i, a := range args {
		if a == "--" {
			return append(names, args[i+1:]...), nil
		}
		if len(a) > 1 && a[0] == '-' {
			f, ok := flags[trimDashes(a)]
			if !ok {
				return nil, usageError{fmt.Sprintf("unknown flag %s", a)}
			}
			*f = true
			continue
		}
		names = append(names, a)
	}
	return names, nil
}

func trimDashes(s string) string {
	for len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	return s
}
