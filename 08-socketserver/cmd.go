// The "cmd" handler: the articles' mini ssh, made safe.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Running a command that a network client chose is how machines get
// taken over. This handler runs only the programs below, never through a
// shell (so ";", "|", "$(...)" and "*" are plain characters), with a
// time limit, and with arguments each program's rule accepts.
var allowed = map[string]func(args []string) error{
	"date":     dateArgs,
	"echo":     anyArgs,
	"hostname": noArgs, // with an argument it renames the machine (as root)
	"uptime":   noArgs,
	"whoami":   noArgs,
}

func anyArgs([]string) error { return nil }

func noArgs(args []string) error {
	if len(args) > 0 {
		return errors.New("takes no arguments")
	}
	return nil
}

// dateArgs allows -u and +FORMAT: date with other arguments can set the
// system clock. A field width in the format is refused too: it can only
// pad, and %2147483647c asks date for two gigabytes of spaces.
func dateArgs(args []string) error {
	for _, a := range args {
		switch {
		case a == "-u":
		case strings.HasPrefix(a, "+"):
			if hasFieldWidth(a[1:]) {
				return errors.New("+FORMAT takes no field width (as in %10c): a width only makes the output longer")
			}
		default:
			return errors.New("accepts only -u and +FORMAT")
		}
	}
	return nil
}

// hasFieldWidth reports whether a date format gives a conversion a
// width: a "%", any of the flags "-_0^#", then a digit from 1 to 9.
func hasFieldWidth(format string) bool {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("-_0^#", format[i]) >= 0 {
			i++
		}
		if i < len(format) && '1' <= format[i] && format[i] <= '9' {
			return true
		}
		// format[i] is the conversion, or the second "%" of "%%".
	}
	return false
}

// cmdTimeout is how long a command may run before it is killed, and
// maxOutput how much it may print: a program that prints more is killed
// at once, so it cannot burn a CPU for cmdTimeout.
const (
	cmdTimeout = 5 * time.Second
	maxOutput  = 64 << 10
)

var errTooMuchOutput = fmt.Errorf("printed more than %d bytes", maxOutput)

// runFunc runs a program with arguments and returns what it printed.
// The handler takes it as a field, so tests can put a recorder in its
// place and prove that a refused command never reaches the system.
type runFunc func(ctx context.Context, name string, args []string) ([]byte, error)

// cmdHandler reads one command per line and answers each with a frame.
type cmdHandler struct {
	run      runFunc
	timeout  time.Duration
	log      *log.Logger
	programs chan struct{} // one token per program running; nil means no limit
}

// newCmdHandler returns a handler that runs at most maxPrograms programs
// at once, for all its clients together.
func newCmdHandler(run runFunc, timeout time.Duration, maxPrograms int, log *log.Logger) *cmdHandler {
	return &cmdHandler{run: run, timeout: timeout, log: log, programs: make(chan struct{}, maxPrograms)}
}

// WriteBye sends the server's own farewell as a frame, like every reply.
func (h *cmdHandler) WriteBye(w io.Writer, line string) error {
	return writeFrame(w, []byte(line))
}

func (h *cmdHandler) Handle(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readRequest(conn, lines)
		if err != nil {
			if bye := farewell(err); bye != "" {
				writeFrame(conn, []byte(bye))
			}
			return
		}
		reply := h.answer(conn.RemoteAddr(), string(line))
		if err := writeFrame(conn, reply); err != nil {
			return
		}
	}
}

// answer checks a command line against the allowlist, runs it if it
// passes and returns the reply. Every line gets exactly one reply, and
// a refusal leaves the connection usable for the next command.
func (h *cmdHandler) answer(from net.Addr, line string) []byte {
	// Fields splits on spaces and nothing else: no quotes, no
	// variables, no globbing. What the client typed is what runs.
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return []byte("refused: empty command; allowed: " + allowedNames() + "\n")
	}
	name, args := fields[0], fields[1:]
	check, ok := allowed[name]
	if !ok {
		h.logf("client %s: refused %s", from, logged(line))
		return []byte(fmt.Sprintf("refused: %q is not an allowed command; allowed: %s\n", name, allowedNames()))
	}
	if err := check(args); err != nil {
		h.logf("client %s: refused %s", from, logged(line))
		return []byte(fmt.Sprintf("refused: %s %v\n", name, err))
	}

	// Programs cost processes and CPU: past the limit, say "busy" at
	// once rather than queue without bound.
	if h.programs != nil {
		select {
		case h.programs <- struct{}{}:
			defer func() { <-h.programs }()
		default:
			h.logf("client %s: busy, did not run %s", from, logged(line))
			return []byte(fmt.Sprintf("busy: the server runs at most %d programs at once; try again in a moment\n", cap(h.programs)))
		}
	}

	h.logf("client %s: ran %s", from, logged(line))
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	out, err := h.run(ctx, name, args)
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrDot):
		return []byte(fmt.Sprintf("unavailable: %s is not installed on this machine\n", name))
	case errors.Is(err, errTooMuchOutput):
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, fmt.Sprintf("error: %s %v and was stopped\n", name, err)...)
	case ctx.Err() != nil:
		return []byte(fmt.Sprintf("error: %s did not finish within %v and was stopped\n", name, h.timeout))
	case err != nil:
		return append(out, fmt.Sprintf("error: %s: %v\n", name, err)...)
	case len(out) == 0:
		// On the wire an empty frame would do; a person at the
		// client deserves words.
		return []byte("(no output)\n")
	}
	return out
}

func (h *cmdHandler) logf(format string, args ...any) {
	if h.log != nil {
		h.log.Printf(format, args...)
	}
}

// maxLogged is how many bytes of a client's line the log repeats.
const maxLogged = 32

// logged quotes what a client sent, for the log: at most maxLogged of its
// bytes, then the full length, so that a log line never costs much more
// than the input that caused it, whatever the client sends.
func logged(line string) string {
	if len(line) <= maxLogged {
		return strconv.Quote(line)
	}
	cut := maxLogged
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(line[cut]); i++ {
		cut-- // do not cut a character in two
	}
	return fmt.Sprintf("%q… (%d bytes)", line[:cut], len(line))
}

func allowedNames() string {
	names := make([]string, 0, len(allowed))
	for name := range allowed {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// runProgram starts the program directly (exec, not "sh -c"), feeds it
// no input, and kills it when ctx ends or as soon as it has printed more
// than maxOutput bytes; then it returns the first maxOutput bytes and
// errTooMuchOutput.
func runProgram(ctx context.Context, name string, args []string) ([]byte, error) {
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(ctx, name, args...)
	out := &cappedBuffer{max: maxOutput, full: kill}
	cmd.Stdout = out
	cmd.Stderr = out
	// A program's children could keep its output open after it was
	// killed; WaitDelay stops Run from waiting for them forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if out.overflowed() {
		err = errTooMuchOutput
	}
	return out.bytes(), err
}

// cappedBuffer keeps the first max bytes written to it and pretends to
// take the rest, so a chatty program neither fills our memory nor blocks.
// The first byte past max calls full, once.
type cappedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	over bool
	full func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - b.buf.Len()
	b.buf.Write(p[:max(0, min(room, len(p)))])
	if len(p) > room && !b.over {
		b.over = true
		if b.full != nil {
			b.full()
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) overflowed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

func (b *cappedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
}
