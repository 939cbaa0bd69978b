package main

// Watch mode: the status screen, redrawn whenever a .go file of the
// current exercise changes, moving on when the exercise passes.
//
// Changes are seen two ways at once. File events (fsnotify: inotify,
// kqueue, ReadDirectoryChangesW) answer within a tenth of a second. But
// they do not arrive everywhere: WSL2 on a Windows drive (/mnt/c),
// network file systems, some containers and virtual machines' shared
// folders stay silent, which is why rustlings users saw its watch mode
// "die" there. So a poll looks at the exercise's .go files every second
// as well, always: it costs a few stats and reads of small files, and it
// needs no guess about whether events work. When the events do arrive,
// the poll finds nothing new and stays quiet.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// pollEnv turns the file events off, leaving the poll alone: for a
	// file system whose events misbehave, and for the tests of the poll.
	pollEnv = "SOCKETSTEPS_WORKSHOP_POLL"
	// pollEvery is how often the poll looks.
	pollEvery = time.Second
	// settle is how long a burst of file events must be quiet before the
	// tests run: an editor's save is often several events.
	settle = 100 * time.Millisecond
)

// testOutcome is a finished run of the current exercise's tests.
type testOutcome struct {
	run   int // which run: only the latest counts
	index int
	r     result
	err   error
}

// watch shows the status screen and runs the current exercise's tests
// again whenever one of its .go files changes, until ctx ends (Ctrl+C).
// It starts at the exercise named start, or at the first that does not
// pass.
func (c *cli) watch(ctx context.Context, root string, course []exercise, start string) error {
	c.watching = true
	if !c.terminal { // on a terminal, progress says it
		fmt.Fprintf(c.stdout, "Running the tests of %d exercises…\n", len(course))
	}
	results, err := c.progress(ctx, root, course)
	if err != nil {
		return stopped(c, err)
	}
	cur := nextTodo(results, 0)
	for i, e := range course {
		if e.Name == start {
			cur = nextTodo(results, i)
		}
	}
	if cur < 0 {
		c.draw(func(w io.Writer) { c.screen(w, course, results, -1, "") })
		return nil
	}

	how := "file events, and a look every second"
	var fsw *fsnotify.Watcher
	if c.getenv(pollEnv) != "" {
		how = "a look every second (" + pollEnv + " is set)"
	} else if fsw, err = fsnotify.NewWatcher(); err != nil {
		how = fmt.Sprintf("a look every second (no file events: %v)", err)
		fsw = nil
	} else {
		defer fsw.Close()
	}
	var events <-chan fsnotify.Event
	var eventErrs <-chan error
	if fsw != nil {
		events, eventErrs = fsw.Events, fsw.Errors
	}

	watched := ""
	follow := func(dir string) {
		if fsw != nil && watched != "" {
			_ = fsw.Remove(watched) // fails only if the folder is gone
		}
		watched = dir
		if fsw != nil {
			if err := fsw.Add(dir); err != nil {
				how = fmt.Sprintf("a look every second (no file events for %s: %v)", course[cur].Name, err)
			}
		}
	}
	follow(course[cur].dir(root))
	snapshot := stamp(watched)

	var running context.CancelFunc // the run of the tests under way, if any
	runs := 0
	outcomes := make(chan testOutcome)
	test := func() {
		if running != nil {
			running() // a newer save: the older run's result no longer matters
		}
		var tctx context.Context
		tctx, running = context.WithCancel(ctx)
		runs++
		run, i := runs, cur
		go func() {
			r, err := c.goTest(tctx, root, course[i], testRun{tags: "exercise", failFast: true})
			select {
			case outcomes <- testOutcome{run, i, r, err}:
			case <-tctx.Done(): // cancelled: a newer run, or Ctrl+C
			}
		}()
		c.say("Running the tests of " + course[i].Name + "…")
	}
	defer func() {
		if running != nil {
			running()
		}
	}()

	note := ""
	show := func() {
		c.draw(func(w io.Writer) {
			c.screen(w, course, results, cur, note)
			fmt.Fprintf(w, "\nWatching %s (%s). Save a .go file there to test again; Ctrl+C stops.\n",
				course[cur].Name, how)
		})
	}
	show()

	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	var settled <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.stdout, "\nStopped watching.")
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if strings.HasSuffix(ev.Name, ".go") {
				settled = time.After(settle)
			}
		case err, ok := <-eventErrs:
			if !ok {
				eventErrs = nil
				continue
			}
			how = fmt.Sprintf("a look every second (file events failed: %v)", err)
		case <-settled:
			settled = nil
			snapshot = stamp(watched)
			note = ""
			test()
		case <-ticker.C:
			if now := stamp(watched); !bytes.Equal(now, snapshot) {
				snapshot = now
				note = ""
				test()
			}
		case o := <-outcomes:
			if o.run != runs {
				continue // an older run that ended before its cancel
			}
			running()
			running = nil
			if o.err != nil {
				return stopped(c, o.err)
			}
			results[o.index] = o.r
			if !o.r.Passed {
				show()
				continue
			}
			note = c.green("✓ " + course[o.index].Name + " passes.")
			cur = nextTodo(results, o.index+1)
			if cur < 0 {
				c.draw(func(w io.Writer) { c.screen(w, course, results, -1, note) })
				return nil
			}
			note += " Next: " + course[cur].Name + "."
			follow(course[cur].dir(root))
			snapshot = stamp(watched)
			// What the first run said of it may be old: the learner
			// may have worked on it since. Test it afresh.
			test()
		}
	}
}

// stopped turns the end of ctx (Ctrl+C) into a quiet stop.
func stopped(c *cli, err error) error {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(c.stdout, "\nStopped watching.")
		return nil
	}
	return err
}

// stamp sums up the .go files of dir: names, sizes, times and contents.
// Two stamps differ when a file was saved, added or removed, even on a
// file system whose times are coarse.
func stamp(dir string) []byte {
	h := sha256.New()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", filepath.Base(f), fi.Size(), fi.ModTime().UnixNano())
		if data, err := os.ReadFile(f); err == nil {
			h.Write(data)
		}
	}
	return h.Sum(nil)
}

// draw writes a screen: on a terminal, over the one before (clear and
// home); elsewhere (a pipe, a file, CI) after it, below a rule, so that
// nothing is lost.
func (c *cli) draw(write func(io.Writer)) {
	var b bytes.Buffer
	if c.terminal {
		b.WriteString("\x1b[H\x1b[2J")
	} else {
		b.WriteString("\n" + strings.Repeat("─", 60) + "\n")
	}
	write(&b)
	c.stdout.Write(b.Bytes())
}

// say adds a line below the screen, without redrawing it.
func (c *cli) say(line string) {
	fmt.Fprintln(c.stdout, line)
}
