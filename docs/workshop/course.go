package main

// The course: which exercises there are, in which order, and what each
// one's README says (its one-line task, its difficulty, its task in a few
// lines, its graded hints).

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// exercise is one exercise folder and what its README says.
type exercise struct {
	Name       string   // "04-accept/exercise-quit", always with forward slashes
	Lesson     string   // "04-accept"
	Difficulty int      // 1 to 3: the full stars of "Difficulty: ★★☆"
	Task       string   // one line: the README's title without "Exercise: "
	About      string   // the first paragraph of "## The task", on one line
	Hints      []string // the graded hints, in order
}

// dir is the exercise's folder under root, in the platform's spelling.
func (e exercise) dir(root string) string {
	return filepath.Join(root, filepath.FromSlash(e.Name))
}

// pkg is the exercise as go test wants it: "./04-accept/exercise-quit/".
func (e exercise) pkg() string { return "./" + e.Name + "/" }

// findRoot returns the folder of the go.mod at or above dir: the course's
// root, where the exercises are.
func findRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or above it: run this inside the socketsteps folder", dir)
		}
		d = parent
	}
}

// loadCourse finds every NN-lesson/exercise-* folder under root and reads
// its README, in course order: lesson by lesson, and inside a lesson in the
// order of the table of docs/workshop.md (the instructor's page). Folders
// the table does not list come after the listed ones of their lesson, by
// name; without the page, a lesson's exercises go by name.
func loadCourse(root string) ([]exercise, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "exercise-*"))
	if err != nil {
		return nil, err
	}
	var course []exercise
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		name := filepath.ToSlash(rel)
		readme, err := os.ReadFile(filepath.Join(d, "README.md"))
		if err != nil {
			return nil, fmt.Errorf("exercise %s: %w", name, err)
		}
		e := parseReadme(string(readme))
		e.Name = name
		e.Lesson = path.Dir(name)
		course = append(course, e)
	}
	if len(course) == 0 {
		return nil, fmt.Errorf("no exercise folders (NN-lesson/exercise-*) in %s", root)
	}

	order := map[string]int{}
	if page, err := os.ReadFile(filepath.Join(root, "docs", "workshop.md")); err == nil {
		for i, name := range tableOrder(string(page)) {
			if _, dup := order[name]; !dup {
				order[name] = i
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	rank := func(e exercise) int {
		if i, ok := order[e.Name]; ok {
			return i
		}
		return len(order) // after every listed one
	}
	sort.SliceStable(course, func(i, j int) bool {
		a, b := course[i], course[j]
		if a.Lesson != b.Lesson {
			return a.Lesson < b.Lesson
		}
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a.Name < b.Name
	})
	return course, nil
}

// tableLink is the link to an exercise in the first cell of a row of
// workshop.md's table: "| [exercise-quit](../04-accept/exercise-quit/) |".
var tableLink = regexp.MustCompile(`^\|\s*\[[^\]]*\]\(\.\./(\d\d-[a-z0-9-]+/exercise-[a-z0-9-]+)/?\)`)

// tableOrder returns the exercises that the rows of workshop.md's
// "## All the exercises" table link to, in the order of the rows.
func tableOrder(page string) []string {
	var names []string
	in := false
	for _, line := range strings.Split(page, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## All the exercises")
			continue
		}
		if m := tableLink.FindStringSubmatch(line); in && m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// difficultyLine is how an exercise README states its difficulty, as in
// "Difficulty: ★★☆ · Practises: …".
var difficultyLine = regexp.MustCompile(`Difficulty: ([★☆]{3})`)

// parseReadme reads what the runner shows of an exercise README: the title
// as the one-line task, the difficulty, the first paragraph of "## The
// task", and the hints.
func parseReadme(readme string) exercise {
	var e exercise
	readme = strings.ReplaceAll(readme, "\r\n", "\n")
	lines := strings.Split(readme, "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "# ") {
			e.Task = plain(strings.TrimPrefix(strings.TrimPrefix(l, "# "), "Exercise: "))
			break
		}
	}
	if m := difficultyLine.FindStringSubmatch(readme); m != nil {
		e.Difficulty = strings.Count(m[1], "★")
	}
	var para []string
	for _, l := range sectionLines(lines, "## The task") {
		if strings.TrimSpace(l) == "" {
			if len(para) > 0 {
				break
			}
			continue
		}
		para = append(para, strings.TrimSpace(l))
	}
	e.About = plain(strings.Join(para, " "))
	e.Hints = parseHints(sectionLines(lines, "## Hints"))
	return e
}

// sectionLines returns the lines under the heading, up to the next heading
// of the same level or above.
func sectionLines(lines []string, heading string) []string {
	for i, l := range lines {
		if strings.TrimSpace(l) != heading {
			continue
		}
		var out []string
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "## ") {
				break
			}
			out = append(out, l)
		}
		return out
	}
	return nil
}

// listItem starts an item of a Markdown list at the left margin: "1. " or
// "2) " for a numbered list, "- " or "* " for a bulleted one.
var listItem = regexp.MustCompile(`^(?:\d+[.)]|[-*])\s+`)

// parseHints returns the items of the lists in a "## Hints" section, one
// hint per item, in order. The READMEs number their hints, from a nudge to
// nearly the answer; a bulleted list counts the same way, one hint per
// bullet. An item goes on over its indented lines; text outside a list
// (such as a closing "Flags: …" paragraph) is not a hint.
func parseHints(section []string) []string {
	var hints []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			hints = append(hints, plain(strings.Join(cur, " ")))
			cur = nil
		}
	}
	for _, l := range section {
		switch {
		case listItem.MatchString(l):
			flush()
			cur = []string{strings.TrimSpace(listItem.ReplaceAllString(l, ""))}
		case strings.TrimSpace(l) == "":
			// A blank line may separate items, or end the list.
		case len(cur) > 0 && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")):
			cur = append(cur, strings.TrimSpace(l))
		default:
			flush()
		}
	}
	flush()
	return hints
}

// mdLink is a Markdown link, [text](target).
var mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)\s]*\)`)

// plain makes a line of Markdown readable in a terminal: links become
// their text, bold markers go; code spans keep their backquotes.
func plain(s string) string {
	s = mdLink.ReplaceAllString(s, "$1")
	s = strings.ReplaceAll(s, "**", "")
	return strings.Join(strings.Fields(s), " ")
}

// wrap breaks text into lines of at most width characters, between words
// but never inside a `code span` (a longer span gets a line of its own).
func wrap(text string, width int) []string {
	var words []string
	open := false // inside a code span
	for _, w := range strings.Fields(text) {
		if open {
			words[len(words)-1] += " " + w
		} else {
			words = append(words, w)
		}
		if strings.Count(w, "`")%2 == 1 {
			open = !open
		}
	}
	var lines []string
	line := ""
	for _, w := range words {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) > width:
			lines = append(lines, line)
			line = w
		default:
			line += " " + w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// findExercise resolves what a learner typed to one exercise: the full
// name ("04-accept/exercise-quit"), the folder's path ("./04-accept/exercise-quit/",
// with either slash), the folder's name ("exercise-quit") or the name
// without its prefix ("quit").
func findExercise(course []exercise, arg string) (exercise, error) {
	want := strings.Trim(strings.TrimPrefix(strings.ReplaceAll(arg, `\`, "/"), "./"), "/")
	var found []exercise
	for _, e := range course {
		base := path.Base(e.Name)
		if want == e.Name || want == base || "exercise-"+want == base {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return exercise{}, fmt.Errorf("no exercise named %q: `go run ./docs/workshop list` shows them all", arg)
	default:
		var names []string
		for _, e := range found {
			names = append(names, e.Name)
		}
		return exercise{}, fmt.Errorf("%q could be %s: give the whole name", arg, strings.Join(names, " or "))
	}
}
