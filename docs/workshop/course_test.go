package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite starters.txtar from the repository's starters")

func TestHintsAreTheItemsOfANumberedList(t *testing.T) {
	e := parseReadme(`# Exercise: x

## Hints

1. A nudge.
2. The API: ` + "`io.ReadFull`" + `, whose item goes on
   over an indented line.

3. Nearly the answer, after a blank line.

Flags: ` + "`-addr`" + `. A paragraph after the list is not a hint.

## Next
1. Not in the Hints section.
`)
	assert.Equal(t, []string{
		"A nudge.",
		"The API: `io.ReadFull`, whose item goes on over an indented line.",
		"Nearly the answer, after a blank line.",
	}, e.Hints)
}

func TestAnOlderBulletedListIsOneHintPerBullet(t *testing.T) {
	e := parseReadme("# Exercise: x\n\n## Hints\n\n- One,\n  two lines.\n- Two, with a [link](../x.md).\n* Three.\n")
	assert.Equal(t, []string{"One, two lines.", "Two, with a link.", "Three."}, e.Hints)
}

func TestAReadmeWithoutHintsHasNone(t *testing.T) {
	assert.Empty(t, parseReadme("# Exercise: x\n\n## The task\n\n- Not a hint.\n").Hints)
}

func TestReadmeGivesTitleDifficultyAndTheTasksFirstParagraph(t *testing.T) {
	e := parseReadme("# Exercise: echo until the client says quit\r\n\r\n" +
		"Difficulty: ★★☆ · Practises: loops · Lesson: [04-accept](../README.md)\r\n\r\n" +
		"An introduction.\r\n\r\n## The task\r\n\r\nWrite `converse` in [`starter.go`](starter.go),\r\n" +
		"**every line**.\r\n\r\nA second paragraph.\r\n")
	assert.Equal(t, "echo until the client says quit", e.Task)
	assert.Equal(t, 2, e.Difficulty)
	assert.Equal(t, "Write `converse` in `starter.go`, every line.", e.About)
}

func TestLinesAreWrappedBetweenWordsButNotInsideCode(t *testing.T) {
	assert.Equal(t, []string{"one two", "`three four`", "five"}, wrap("one two `three four` five", 9))
	assert.Equal(t, []string{"a", "`long code span`", "b"}, wrap("a `long code span` b", 5))
}

func TestTableOrderIsTheRowsUnderAllTheExercises(t *testing.T) {
	page := `## Full-day workshop (7 h)

| 0:40 | 30 | [x](../02-connect/exercise-portscan/) | |

## All the exercises

| exercise | lesson |
|---|---|
| [exercise-quit](../04-accept/exercise-quit/) | 04-accept |
| [exercise-busy](../04-accept/exercise-busy) | 04-accept |

## Windows

- [exercise-backlog](../03-bind-listen/exercise-backlog/)
`
	assert.Equal(t, []string{"04-accept/exercise-quit", "04-accept/exercise-busy"}, tableOrder(page))
}

// The course order is lesson order, then, inside a lesson, the order of
// docs/workshop.md's table; the table lists every exercise once, lesson
// by lesson, so the two orders are the same list.
func TestCourseOrderIsTheOrderOfTheWorkshopPagesTable(t *testing.T) {
	root := repoRoot(t)
	course, err := loadCourse(root)
	require.NoError(t, err)
	page, err := os.ReadFile(filepath.Join(root, "docs", "workshop.md"))
	require.NoError(t, err)
	var names []string
	for _, e := range course {
		names = append(names, e.Name)
	}
	assert.Equal(t, tableOrder(string(page)), names)
}

// docs/workshop.md quotes the runner's first screen, "0/21 done": the
// number must be the number of exercises.
func TestTheWorkshopPageCountsTheExercisesAsTheRunnerDoes(t *testing.T) {
	root := repoRoot(t)
	course, err := loadCourse(root)
	require.NoError(t, err)
	page, err := os.ReadFile(filepath.Join(root, "docs", "workshop.md"))
	require.NoError(t, err)
	quoted := regexp.MustCompile(`\b0/(\d+) done\b`).FindAllStringSubmatch(string(page), -1)
	require.NotEmpty(t, quoted, "workshop.md no longer quotes \"0/N done\": drop this test")
	for _, q := range quoted {
		assert.Equal(t, strconv.Itoa(len(course)), q[1], "workshop.md says %q", q[0])
	}
}

func TestEveryExerciseReadmeGivesATaskADifficultyAndTwoOrThreeHints(t *testing.T) {
	course, err := loadCourse(repoRoot(t))
	require.NoError(t, err)
	for _, e := range course {
		assert.NotEmpty(t, e.Task, "%s/README.md: no title such as \"# Exercise: fix the spin\"", e.Name)
		assert.NotEmpty(t, e.About, "%s/README.md: no paragraph under \"## The task\"", e.Name)
		assert.True(t, e.Difficulty >= 1 && e.Difficulty <= 3, "%s/README.md: no difficulty such as \"Difficulty: ★★☆\"", e.Name)
		assert.True(t, len(e.Hints) >= 2 && len(e.Hints) <= 3,
			"%s/README.md: %d hints; want two or three under \"## Hints\", a numbered list from a nudge to nearly the answer", e.Name, len(e.Hints))
	}
}

func TestAnExerciseIsFoundByItsNameFolderOrShortName(t *testing.T) {
	course := []exercise{{Name: "04-accept/exercise-quit"}, {Name: "05-loop/exercise-commands"}, {Name: "06-goroutines/exercise-quit"}}
	for _, arg := range []string{"05-loop/exercise-commands", "./05-loop/exercise-commands/", `05-loop\exercise-commands`, "exercise-commands", "commands"} {
		e, err := findExercise(course, arg)
		if assert.NoError(t, err, arg) {
			assert.Equal(t, "05-loop/exercise-commands", e.Name, arg)
		}
	}
	assert.Equal(t, "commands", shortName(course, course[1]))
	assert.Equal(t, "04-accept/exercise-quit", shortName(course, course[0]), "two lessons have an exercise-quit")
	_, err := findExercise(course, "quit")
	assert.ErrorContains(t, err, `"quit" could be 04-accept/exercise-quit or 06-goroutines/exercise-quit`)
	_, err = findExercise(course, "nothing")
	assert.ErrorContains(t, err, `no exercise named "nothing"`)
}

func TestFlagsMayComeBeforeOrAfterTheName(t *testing.T) {
	var yes bool
	names, err := parseArgs([]string{"quit", "-y"}, map[string]*bool{"y": &yes})
	require.NoError(t, err)
	assert.Equal(t, []string{"quit"}, names)
	assert.True(t, yes)

	var force bool
	names, err = parseArgs([]string{"--force", "quit"}, map[string]*bool{"force": &force})
	require.NoError(t, err)
	assert.Equal(t, []string{"quit"}, names)
	assert.True(t, force)

	_, err = parseArgs([]string{"--forse", "quit"}, map[string]*bool{"force": &force})
	assert.EqualError(t, err, "unknown flag --forse")
}

func TestTheNextExerciseToSolveGoesRoundTheCourse(t *testing.T) {
	results := []result{{Passed: false}, {Passed: true}, {Passed: false}}
	assert.Equal(t, 0, nextTodo(results, 0))
	assert.Equal(t, 2, nextTodo(results, 1))
	assert.Equal(t, 0, nextTodo(results, 3), "past the end, it starts again at the first")
	assert.Equal(t, -1, nextTodo([]result{{Passed: true}}, 0))
}

// goTestJSON is what `go test -json` printed for a starter (testify's
// output, a subtest) and for one that does not build (Go 1.24 and later).
const (
	testifyFailure = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"run","Package":"p","Test":"TestA/sub"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"    dial_options_test.go:27: \n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tError Trace:\t/work/main/01-create/exercise-dial-options/dial_options_test.go:151\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \t            \t\t\t\t/work/main/01-create/exercise-dial-options/dial_options_test.go:27\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tError:      \tReceived unexpected error:\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \t            \tnot written yet: see the TODOs in starter.go\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tTest:       \tTestA/sub\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"        \tMessages:   \tthe dial should succeed\n"}
{"Action":"output","Package":"p","Test":"TestA/sub","Output":"--- FAIL: TestA/sub (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestA/sub","Elapsed":0}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:5: boom\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"        second line\n"}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.005s\n"}
{"Action":"fail","Package":"p","Elapsed":0.006}
`
	buildFailure = `{"ImportPath":"p [p.test]","Action":"build-output","Output":"# p [p.test]\n"}
{"ImportPath":"p [p.test]","Action":"build-output","Output":"./starter.go:3:15: undefined: notDefinedAnywhere\n"}
{"ImportPath":"p [p.test]","Action":"build-fail"}
{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p","Elapsed":0,"FailedBuild":"p [p.test]"}
`
)

func TestTheMessageIsTheFirstFailingTestsWithoutTestifysTrace(t *testing.T) {
	r := parseTestJSON([]byte(testifyFailure), "")
	assert.False(t, r.Passed)
	assert.True(t, r.TestFailed)
	assert.False(t, r.BuildFailed)
	assert.Equal(t, "TestA/sub", r.FirstFail)
	assert.Equal(t, []string{
		"dial_options_test.go:27:",
		"  Received unexpected error:",
		"  not written yet: see the TODOs in starter.go",
		"  the dial should succeed",
	}, r.Message)

	r = parseTestJSON([]byte(strings.Replace(testifyFailure, `"Test":"TestA/sub","Elapsed":0}`, `"Test":"TestA/sub","Elapsed":0,"Action":"pass"}`, 1)), "")
	assert.Equal(t, "TestA", r.FirstFail)
}

func TestAMessageOnSeveralLinesKeepsItsLines(t *testing.T) {
	assert.Equal(t, []string{"b_test.go:5: boom", "  second line"},
		testMessage([]string{"    b_test.go:5: boom", "        second line"}))
}

func TestAPanicIsShownByItsMessageNotItsStack(t *testing.T) {
	assert.Equal(t, []string{"panic: oops [recovered]"},
		testMessage([]string{"=== RUN   TestY", "--- FAIL: TestY (0.00s)", "panic: oops [recovered]", "", "goroutine 20 [running]:"}))
}

func TestABuildFailureIsNoTestFailure(t *testing.T) {
	r := parseTestJSON([]byte(buildFailure), "")
	assert.False(t, r.Passed)
	assert.False(t, r.TestFailed)
	assert.True(t, r.BuildFailed)
	assert.Equal(t, []string{"./starter.go:3:15: undefined: notDefinedAnywhere"}, r.Message)

	// Before Go 1.24, the build errors went to stderr.
	r = parseTestJSON([]byte(`{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p"}
`), "# p\n./starter.go:3:15: undefined: notDefinedAnywhere\n")
	assert.True(t, r.BuildFailed)
	assert.False(t, r.TestFailed)
	assert.Equal(t, []string{"./starter.go:3:15: undefined: notDefinedAnywhere"}, r.Message)
}

func TestALongMessageIsCutAndSaysHowMuch(t *testing.T) {
	lines := strings.Split("1 2 3 4 5 6 7 8 9 10", " ")
	assert.Equal(t, append(lines[:8:8], "… (2 more lines)"), shorten(lines, 8))
	long := strings.Repeat("x", maxMessageWidth+10)
	assert.Equal(t, []string{strings.Repeat("x", maxMessageWidth-1) + "…"}, shorten([]string{long}, 8))
}

// reset without git restores the copy of the starters built into the
// runner, so that copy must be the repository's starters, byte for byte
// (line ends aside: a Windows checkout may turn them into CRLF). Run with
// -update after changing a starter.
func TestEmbeddedStartersAreTheShippedOnes(t *testing.T) {
	root := repoRoot(t)
	course, err := loadCourse(root)
	require.NoError(t, err)
	lf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

	if *update {
		a := &txtar.Archive{Comment: []byte("The starters as shipped, for `go run ./docs/workshop reset NAME` without git.\n" +
			"Written by `go test ./docs/workshop -run TestEmbeddedStartersAreTheShippedOnes -update`: do not edit.\n")}
		for _, e := range course {
			data, err := os.ReadFile(filepath.Join(e.dir(root), starterFile))
			require.NoError(t, err)
			a.Files = append(a.Files, txtar.File{Name: e.Name + "/" + starterFile, Data: lf(data)})
		}
		require.NoError(t, os.WriteFile("starters.txtar", txtar.Format(a), 0o644))
		embeddedStarters, err = os.ReadFile("starters.txtar")
		require.NoError(t, err)
	}

	embedded := shippedStarters()
	for _, e := range course {
		data, err := os.ReadFile(filepath.Join(e.dir(root), starterFile))
		require.NoError(t, err)
		want, ok := embedded[e.Name]
		if assert.True(t, ok, "starters.txtar has no %s/%s: run go test ./docs/workshop -run %s -update", e.Name, starterFile, t.Name()) {
			assert.True(t, bytes.Equal(lf(data), want), "starters.txtar's %s/%s differs from the repository's: run go test ./docs/workshop -run %s -update", e.Name, starterFile, t.Name())
		}
		delete(embedded, e.Name)
	}
	assert.Empty(t, embedded, "starters.txtar has starters of exercises that do not exist: run go test ./docs/workshop -run %s -update", t.Name())
}

// check tells "every test skipped here" (07-select's exercises on
// Windows) from a starter that passes: the first is no failure.
func TestAPackageWhoseTestsAllSkipRanNothing(t *testing.T) {
	r := parseTestJSON([]byte(`{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`), "")
	assert.True(t, r.Passed)
	assert.Zero(t, r.Ran)

	r = parseTestJSON([]byte(`{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p"}
`), "")
	assert.Equal(t, 1, r.Ran)
}

func TestAUsageErrorExitsWith2AndAFailureWith1OnOneLine(t *testing.T) {
	exit := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		c := &cli{dir: os.TempDir(), stdin: strings.NewReader(""), stdout: &out, stderr: &errs, getenv: func(string) string { return "" }}
		return c.exit(c.run(context.Background(), args)), errs.String()
	}
	code, stderr := exit("frobnicate")
	assert.Equal(t, 2, code)
	assert.True(t, strings.HasPrefix(stderr, "error: unknown command \"frobnicate\"\n\nusage: "), stderr)

	code, stderr = exit("reset")
	assert.Equal(t, 2, code)
	assert.True(t, strings.HasPrefix(stderr, "error: reset needs the name of an exercise"), stderr)

	code, stderr = exit("list") // os.TempDir() is no course
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	assert.True(t, strings.HasPrefix(stderr, "error: no go.mod in "), stderr)
}
