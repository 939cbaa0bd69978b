// Command benchmarks measures the server architectures of lessons 05-08
// side by side and writes the figures and plots of docs/benchmarks.md.
//
// Every server is built once and started fresh, as its own process, for
// every cell of the grid (architecture x connections x message size). The
// load comes from another process: lesson 07's load generator
// (07-select -client -conns N -messages M -size S), or, for lesson 08,
// whose protocol is lines in upper case, this program's own small client
// (-load-upper). Where the machine allows, server and client are pinned to
// separate cores with taskset.
//
// Run it from the repository's root:
//
//	go run ./docs/benchmarks -quick -out /tmp/bench   # a smoke run, under a minute
//	go run ./docs/benchmarks                          # the full grid, rewrites docs/benchmarks.md
//	go run ./docs/benchmarks -compare /path/to/server # also measure an external server
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("bad command line")

// options is the driver's command line.
type options struct {
	quick   bool
	out     string // where results.md and the SVG plots go
	page    string // the page whose marked block is rewritten ("" = none)
	compare string // an external server binary taking a PORT argument
	python  bool
	only    string // run only servers whose name contains this
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("benchmarks", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var o options
	flags.BoolVar(&o.quick, "quick", false, "a small subset of the grid, finishes in under a minute")
	flags.StringVar(&o.out, "out", "docs/benchmarks", "`directory` for results.md and the SVG plots")
	flags.StringVar(&o.page, "page", "", "rewrite the results block of this Markdown `file` (default docs/benchmarks.md for a full run into docs/benchmarks)")
	flags.StringVar(&o.compare, "compare", "", "also measure this external server `binary` (run as: binary PORT, prints \"listening on ADDR\")")
	flags.BoolVar(&o.python, "python", true, "also measure the Python servers in docs/benchmarks/python when python3 is present (not in -quick)")
	flags.StringVar(&o.only, "only", "", "measure only the servers whose name contains this `text`")
	// The client for line-based servers: this program runs itself with
	// -load-upper as a separate process.
	upper := flags.Bool("load-upper", false, "internal: be the load client for a server that answers lines in upper case")
	addr := flags.String("addr", "", "internal: with -load-upper, the server's address")
	conns := flags.Int("conns", 1, "internal: with -load-upper, connections")
	messages := flags.Int("messages", 100, "internal: with -load-upper, round trips per connection")
	size := flags.Int("size", 64, "internal: with -load-upper, bytes per message")
	duration := flags.Duration("duration", 0, "internal: with -load-upper, instead of -messages, make round trips on every connection for this long once all have made their first, untimed one")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return errUsage
	}
	if *duration < 0 {
		fmt.Fprintln(stderr, "-duration must not be negative (0: count -messages instead)")
		flags.Usage()
		return errUsage
	}
	if *upper {
		return loadUpper(ctx, *addr, *conns, *messages, *size, *duration, stdout)
	}
	pythonSet := false
	flags.Visit(func(f *flag.Flag) { pythonSet = pythonSet || f.Name == "python" })
	if o.quick && !pythonSet {
		o.python = false
	}

	root, err := repoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(o.out) {
		o.out = filepath.Join(root, o.out)
	}
	if o.page == "" && !o.quick && o.out == filepath.Join(root, "docs", "benchmarks") {
		o.page = filepath.Join(root, "docs", "benchmarks.md")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	return bench(ctx, root, o, stdout)
}

// repoRoot walks up from the working directory to the folder holding
// go.mod, so the driver works from anywhere inside the repository.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/socketsteps/socketsteps") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this from inside the socketsteps repository (no go.mod found above the working directory)")
		}
		dir = parent
	}
}

// elapsedSince formats a duration for progress lines.
func elapsedSince(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}
