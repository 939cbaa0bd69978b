package docs

// Checks for reliability.md: every test the page cites is a real test of
// the lesson it names, and the command the page gives runs all of them.

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A citation is a link whose text is a test's name in backticks and whose
// target is a test file of a lesson, of one of its exercises or of one of
// the steps of its ladder:
//
//	[`TestSilentClientIsToldAndClosedAfterIdleTimeout`](../06-goroutines/main_test.go)
//	[`TestSilentMemberIsDropped`](../06-goroutines/exercise-chat/chat_test.go)
var citation = regexp.MustCompile("\\[`((?:Test|Fuzz)[A-Za-z0-9_]+)`\\]\\(\\.\\./(0[1-9]-[a-z-]+(?:/exercise-[a-z0-9-]+|/steps/[0-9]+-[a-z0-9-]+)?)/([A-Za-z0-9_]+_test\\.go)\\)")

// testName finds a test's name anywhere in a line, cited or not.
var testName = regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z][A-Za-z0-9_]*`)

// runFlag finds the -run pattern of a command that runs the suite.
var runFlag = regexp.MustCompile(`-run '([^']+)'`)

// command is one `go test -run '…' ./folder/ …` line of the page.
type command struct {
	pattern string
	folders []string
}

type cited struct {
	name, lesson, file string
	line               int
}

func TestReliabilityCitesOnlyTestsThatExist(t *testing.T) {
	cites, bare, _ := readReliabilityPage(t)
	require.NotEmpty(t, cites, "reliability.md cites no test")

	// A name outside a citation cannot be checked against its lesson.
	for _, b := range bare {
		t.Errorf("reliability.md:%d: %s is named without a link; cite it as [`%s`](../NN-lesson/file_test.go)", b.line, b.name, b.name)
	}

	root := repoRoot(t)
	lessons := map[string]map[string][]string{} // lesson -> test -> files declaring it
	for _, c := range cites {
		tests, ok := lessons[c.lesson]
		if !ok {
			tests = lessonTests(t, filepath.Join(root, c.lesson))
			lessons[c.lesson] = tests
		}
		files, ok := tests[c.name]
		if !assert.True(t, ok, "reliability.md:%d: %s is not a test in %s/*_test.go", c.line, c.name, c.lesson) {
			continue
		}
		assert.Contains(t, files, c.file, "reliability.md:%d: %s is declared in %s/%v, not in the linked %s", c.line, c.name, c.lesson, files, c.file)
	}

	// The page covers every server lesson.
	for _, lesson := range []string{"05-loop", "06-goroutines", "07-select", "08-socketserver", "09-udp"} {
		assert.Contains(t, lessons, lesson, "reliability.md cites no test of %s", lesson)
	}
}

func TestReliabilityCommandRunsEveryCitedTest(t *testing.T) {
	cites, _, commands := readReliabilityPage(t)
	require.NotEmpty(t, commands, "reliability.md gives no `go test -run '…'` command in a console block")
	for _, c := range cites {
		runs := false
		for _, cmd := range commands {
			// go test -run matches each top-level test's name against
			// the pattern, unanchored.
			run, err := regexp.Compile(cmd.pattern)
			require.NoError(t, err)
			if run.MatchString(c.name) && slices.Contains(cmd.folders, c.lesson) {
				runs = true
				break
			}
		}
		assert.True(t, runs, "reliability.md:%d: no command of the page runs %s in ./%s/", c.line, c.name, c.lesson)
	}
}

// readReliabilityPage returns the page's citations, the test names it
// mentions outside a citation, and the commands that run them.
func readReliabilityPage(t *testing.T) (cites, bare []cited, commands []command) {
	t.Helper()
	f, err := os.Open("reliability.md")
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	inFence := false
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			if m := runFlag.FindStringSubmatch(line); m != nil && strings.Contains(line, "go test") {
				cmd := command{pattern: m[1]}
				for _, field := range strings.Fields(line) {
					if folder, ok := strings.CutPrefix(field, "./"); ok {
						cmd.folders = append(cmd.folders, strings.TrimSuffix(folder, "/"))
					}
				}
				commands = append(commands, cmd)
			}
			continue
		}
		for _, m := range citation.FindAllStringSubmatch(line, -1) {
			cites = append(cites, cited{name: m[1], lesson: m[2], file: m[3], line: n})
		}
		for _, name := range testName.FindAllString(citation.ReplaceAllString(line, ""), -1) {
			bare = append(bare, cited{name: name, line: n})
		}
	}
	require.NoError(t, s.Err())
	return cites, bare, commands
}

// lessonTests parses every *_test.go file of a lesson folder, whatever its
// build constraints, and returns each top-level Test or Fuzz function with
// the files that declare it (a platform's file may declare it again).
func lessonTests(t *testing.T, dir string) map[string][]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "%s has no test files", dir)
	tests := map[string][]string{}
	fset := token.NewFileSet()
	for _, path := range paths {
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil {
				continue
			}
			if name := fn.Name.Name; strings.HasPrefix(name, "Test") || strings.HasPrefix(name, "Fuzz") {
				tests[name] = append(tests[name], filepath.Base(path))
			}
		}
	}
	for _, files := range tests {
		sort.Strings(files)
	}
	return tests
}
