package docs

// Checks the shape of every lesson's ladder (NN-name/steps/N-slug/), the
// promises the step-by-step lessons make about it:
//
//   - the steps are numbered 1, 2, 3, … with no gap, each a runnable
//     package main with a test of its own beside it;
//   - step 1 is the bare idea: a few dozen lines of code, no more;
//   - a step imports no other lesson and no other step.

import (
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bareLimit is the most lines of code (comments and blank lines aside)
// that a lesson's first step may have. 07 may take two steps to reach a
// minimal poll loop, so its first two steps each have its limit.
var bareLimit = map[string]int{
	"01-create": 40, "02-connect": 40, "03-bind-listen": 40, "04-accept": 40, "05-loop": 40,
	"06-goroutines": 40, "07-select": 150, "08-socketserver": 80, "09-udp": 40,
}

var stepDir = regexp.MustCompile(`^([0-9]+)-[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ladder is a lesson's steps in order: the folder of step 1 first.
func ladder(t *testing.T, root, lesson string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, lesson, "steps"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	byNumber := map[int]string{}
	var numbers []int
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m := stepDir.FindStringSubmatch(e.Name())
		if !assert.NotNil(t, m, "%s/steps/%s: a step's folder is N-slug, such as 1-naive-loop", lesson, e.Name()) {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		assert.NotContains(t, byNumber, n, "%s/steps: two steps numbered %d", lesson, n)
		byNumber[n] = e.Name()
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	var dirs []string
	for i, n := range numbers {
		assert.Equal(t, i+1, n, "%s/steps: the steps are numbered 1, 2, 3, … with no gap", lesson)
		dirs = append(dirs, filepath.Join(root, lesson, "steps", byNumber[n]))
	}
	return dirs
}

// The lessons whose program grows, and so climb a ladder (the top-level
// README says which).
var laddered = []string{"02-connect", "04-accept", "05-loop", "06-goroutines", "07-select", "08-socketserver", "09-udp"}

func TestEveryLessonWhoseProgramGrowsHasALadder(t *testing.T) {
	root := repoRoot(t)
	for _, lesson := range laddered {
		assert.GreaterOrEqual(t, len(ladder(t, root, lesson)), 2, "%s/steps/ should hold a ladder: the bare program, then at least one fix", lesson)
	}
}

func TestEveryStepIsARunnableProgramWithItsOwnTest(t *testing.T) {
	root := repoRoot(t)
	for lesson := range bareLimit {
		for _, dir := range ladder(t, root, lesson) {
			name := rel(root, dir)
			files, err := filepath.Glob(filepath.Join(dir, "*.go"))
			require.NoError(t, err)
			var code, tests int
			for _, f := range files {
				file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
				if !assert.NoError(t, err) {
					continue
				}
				if strings.HasSuffix(f, "_test.go") {
					tests++
				} else {
					code++
					assert.Equal(t, "main", file.Name.Name, "%s: a step is a runnable package main", rel(root, f))
				}
				for _, imp := range file.Imports {
					path, _ := strconv.Unquote(imp.Path.Value)
					assert.False(t, strings.HasPrefix(path, "github.com/socketsteps/socketsteps"),
						"%s imports %s: a step stands alone, like its lesson", rel(root, f), path)
				}
			}
			assert.NotZero(t, code, "%s has no program", name)
			assert.NotZero(t, tests, "%s has no test: every step proves its pitfall or its fix", name)
		}
	}
}

func TestTheFirstStepIsTheBareIdeaInAFewDozenLines(t *testing.T) {
	root := repoRoot(t)
	for lesson, limit := range bareLimit {
		steps := ladder(t, root, lesson)
		first := 1
		if lesson == "07-select" {
			first = 2
		}
		for i := 0; i < first && i < len(steps); i++ {
			n := linesOfCode(t, steps[i])
			assert.LessOrEqual(t, n, limit, "%s has %d lines of code; step %d of %s has at most %d, comments aside", rel(root, steps[i]), n, i+1, lesson, limit)
		}
	}
}

func TestLinesOfCodeLeaveOutCommentsAndBlankLines(t *testing.T) {
	dir := t.TempDir()
	src := "// Package doc.\npackage main\n\n/* a\nblock */\nfunc main() {\n\t// inside\n\tprintln(`a\nb`) // trailing\n}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main_test.go"), []byte("package main\n"), 0o644))
	assert.Equal(t, 5, linesOfCode(t, dir), "package, func, the two lines of the raw string, the brace")
}

// linesOfCode counts the lines of a folder's non-test Go files that hold
// at least one token that is not a comment.
func linesOfCode(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	total := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		fset := token.NewFileSet()
		file := fset.AddFile(f, -1, len(src))
		var s scanner.Scanner
		s.Init(file, src, nil, 0) // comments are skipped
		lines := map[int]bool{}
		for {
			pos, tok, lit := s.Scan()
			if tok == token.EOF {
				break
			}
			if tok == token.SEMICOLON && lit == "\n" {
				continue // inserted at a line's end, not written
			}
			start := fset.Position(pos).Line
			end := start + strings.Count(lit, "\n")
			for l := start; l <= end; l++ {
				lines[l] = true
			}
		}
		total += len(lines)
	}
	return total
}
