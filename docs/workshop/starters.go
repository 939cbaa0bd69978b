package main

// The starters as shipped, for `reset NAME`.
//
// Where they come from, in order:
//
//  1. git, when there is a git and the exercise is in a git work tree:
//     `git show HEAD:./starter.go`. A clone's HEAD is the course as the
//     learner got it (or last pulled it), and git needs nothing kept in
//     step by hand.
//  2. A copy built into this program: starters.txtar, embedded below. It
//     is what makes reset work with Go and nothing else, on a clone
//     without git on the PATH and on a downloaded zip, which has no .git.
//
// Why an embedded copy and not a checksum-checked one: a checksum can tell
// that a file was changed, but not give back what it was, and the only
// place left to take the original from would be the network, which the
// runner never uses. Why not git alone: git is not part of "Go and nothing
// else". The embedded copy costs a file of some hundred kilobytes, and a
// rule: it must equal the starters in the repository, byte for byte.
// TestEmbeddedStartersAreTheShippedOnes checks that in CI, and
// `go test ./docs/workshop -run TestEmbeddedStartersAreTheShippedOnes -update`
// rewrites it after a starter changes.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/txtar"
)

//go:embed starters.txtar
var embeddedStarters []byte

// starterFile is the file of an exercise that the learner edits.
const starterFile = "starter.go"

// shippedStarters returns the embedded starters by exercise name.
func shippedStarters() map[string][]byte {
	// A checkout that turned the archive's line ends into CRLF (git's
	// core.autocrlf on Windows) would hide its file markers: read it with
	// LF line ends, as it was written.
	data := bytes.ReplaceAll(embeddedStarters, []byte("\r\n"), []byte("\n"))
	files := map[string][]byte{}
	for _, f := range txtar.Parse(data).Files {
		name := strings.TrimSuffix(f.Name, "/"+starterFile)
		files[name] = f.Data
	}
	return files
}

// shippedStarter returns the exercise's starter as shipped, and where it
// came from.
func (c *cli) shippedStarter(ctx context.Context, root string, e exercise) ([]byte, string, error) {
	if git, err := exec.LookPath("git"); err == nil {
		cmd := exec.CommandContext(ctx, git, "show", "HEAD:./"+starterFile)
		cmd.Dir = e.dir(root)
		cmd.Env = c.env
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		if err := cmd.Run(); err == nil {
			return stdout.Bytes(), "git HEAD", nil
		}
		// Not a work tree, or the file is not in HEAD: the embedded copy.
	}
	if data, ok := shippedStarters()[e.Name]; ok {
		return data, "the copy built into the runner", nil
	}
	return nil, "", fmt.Errorf("no shipped copy of %s: without git, the runner only knows the starters it was built with",
		filepath.ToSlash(filepath.Join(e.Name, starterFile)))
}
