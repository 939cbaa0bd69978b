package docs

// Checks every ```diff block in the repository's Markdown: a lesson's
// README shows each step of its ladder as the diff from the step before,
// and that diff must be the real one between the two files, so a reader
// never studies a change the code does not make.
//
// The line above the fence names the two sides, as files or as
// declarations in them (with the same syntax as the code markers):
//
//	<!-- diff: 05-loop/steps/1-naive-loop/main.go -> 05-loop/steps/2-end-on-eof/main.go -->
//	<!-- diff: 05-loop/steps/6-back-off/main.go func handle -> 05-loop/main.go func server.handle -->
//
// The block is the unified diff with 3 lines of context and no ---/+++
// header. To write it, leave the block empty and run
//
//	go test ./docs -run TestDiffsMatchTheSource -update-diffs=05-loop/
//
// which rewrites the blocks of the Markdown files under that path prefix
// (relative to the repository's root) and nothing else.

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateDiffs = flag.String("update-diffs", "", "rewrite the ```diff blocks of the Markdown files under this `path prefix` (relative to the repository's root)")

var diffMarker = regexp.MustCompile(`^<!-- diff: (\S+)(?: (func|type|const|var) (\S+))? -> (\S+)(?: (func|type|const|var) (\S+))? -->$`)

func TestDiffsMatchTheSource(t *testing.T) {
	root := repoRoot(t)
	prefix := filepath.ToSlash(filepath.Clean(*updateDiffs))
	for _, md := range filesEnding(t, root, ".md") {
		blocks := diffBlocks(t, md)
		if len(blocks) == 0 {
			continue
		}
		update := *updateDiffs != "" && strings.HasPrefix(rel(root, md), strings.TrimSuffix(prefix, "/"))
		var fixed []diffBlock
		for _, b := range blocks {
			where := fmt.Sprintf("%s:%d", rel(root, md), b.line)
			m := diffMarker.FindStringSubmatch(b.marker)
			if m == nil {
				t.Errorf("%s: a ```diff block must follow a marker such as <!-- diff: 05-loop/steps/1-naive-loop/main.go -> 05-loop/steps/2-end-on-eof/main.go --> on the line above; found %q", where, b.marker)
				continue
			}
			want, err := unifiedDiff(root, m[1:4], m[4:7])
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if want == "" {
				t.Errorf("%s: %s and %s are the same: a step that changes nothing teaches nothing", where, m[1], m[4])
				continue
			}
			if b.code == want {
				continue
			}
			if update {
				b.code = want
				fixed = append(fixed, b)
				continue
			}
			assert.Equal(t, want, b.code, "%s: the diff differs from the files it names; rewrite it with go test ./docs -run TestDiffsMatchTheSource -update-diffs=%s", where, filepath.ToSlash(filepath.Dir(rel(root, md)))+"/")
		}
		if len(fixed) > 0 {
			rewriteDiffBlocks(t, md, fixed)
			t.Logf("%s: rewrote %d diff block(s)", rel(root, md), len(fixed))
		}
	}
}

// unifiedDiff is the diff from side a to side b, each a path relative to
// root with an optional kind and name of a declaration.
func unifiedDiff(root string, a, b []string) (string, error) {
	text := func(side []string) (string, error) {
		texts, err := declarationText(filepath.Join(root, filepath.FromSlash(side[0])), side[1], side[2])
		if err != nil {
			return "", err
		}
		return texts[0], nil // SplitLines ends the last line
	}
	from, err := text(a)
	if err != nil {
		return "", err
	}
	to, err := text(b)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:       difflib.SplitLines(from),
		B:       difflib.SplitLines(to),
		Context: 3,
	})
}

type diffBlock struct {
	line   int    // the fence's line
	end    int    // the closing fence's line
	marker string // the line above the fence
	code   string // the lines between the fences, each ending in \n
}

// diffBlocks returns the ```diff blocks of a Markdown file.
func diffBlocks(t *testing.T, path string) []diffBlock {
	t.Helper()
	var out []diffBlock
	var prev string
	var cur *diffBlock
	var code strings.Builder
	markdownLines(t, path, func(n int, line string, inFence bool, info string) {
		switch {
		case cur == nil && inFence && strings.EqualFold(info, "diff"):
			cur = &diffBlock{line: n, marker: strings.TrimSpace(prev)}
			code.Reset()
		case cur != nil && inFence && fence.MatchString(line) && info == "":
			cur.code = code.String()
			cur.end = n
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line + "\n")
		}
		prev = line
	})
	return out
}

// rewriteDiffBlocks replaces the content of the given blocks of a
// Markdown file.
func rewriteDiffBlocks(t *testing.T, path string, blocks []diffBlock) {
	t.Helper()
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(src), "\n")
	var b strings.Builder
	next := 0 // index into blocks
	for i := 0; i < len(lines); i++ {
		n := i + 1
		if next < len(blocks) && n == blocks[next].line {
			b.WriteString(lines[i])
			b.WriteString(blocks[next].code)
			i = blocks[next].end - 2 // the loop's i++ lands on the closing fence
			next++
			continue
		}
		b.WriteString(lines[i])
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// The checker itself is tested on files it makes, so a broken checker
// cannot pass every README by comparing nothing.
func TestDiffCheckerSeesTheChangeAndRewritesOnlyTheBlock(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(text), 0o644))
	}
	write("a.go", "package main\n\nfunc handle() {\n\tread()\n}\n")
	write("b.go", "package main\n\nfunc handle() {\n\tread()\n\tclose()\n}\n")

	got, err := unifiedDiff(root, []string{"a.go", "", ""}, []string{"b.go", "func", "handle"})
	require.NoError(t, err)
	assert.Equal(t, "@@ -1,5 +1,4 @@\n-package main\n-\n func handle() {\n \tread()\n+\tclose()\n }\n", got,
		"a whole file against one declaration")

	md := filepath.Join(root, "README.md")
	write("README.md", "before\n<!-- diff: a.go -> b.go -->\n```diff\nstale\n```\nafter\n")
	blocks := diffBlocks(t, md)
	require.Len(t, blocks, 1)
	assert.Equal(t, "stale\n", blocks[0].code)
	blocks[0].code, err = unifiedDiff(root, []string{"a.go", "", ""}, []string{"b.go", "", ""})
	require.NoError(t, err)
	rewriteDiffBlocks(t, md, blocks)
	src, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Equal(t, "before\n<!-- diff: a.go -> b.go -->\n```diff\n@@ -2,4 +2,5 @@\n \n func handle() {\n \tread()\n+\tclose()\n }\n```\nafter\n", string(src))
}
