package docs

// Checks for workshop.md, the instructor's page: its exercise table lists
// exactly the exercise folders of the repository with the difficulty
// their READMEs state, its schedules add up to their announced length,
// and its list of platform limits matches what the READMEs say.

import (
	"bufio"
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

// exerciseLink finds a link to an exercise folder, relative to docs/:
// ](../04-accept/exercise-your-address/)
var exerciseLink = regexp.MustCompile(`\]\(\.\./(\d\d-[a-z0-9-]+/exercise-[a-z0-9-]+)/?\)`)

// stars is a difficulty as the READMEs write it: three stars, full or empty.
var stars = regexp.MustCompile(`[★☆]{3}`)

// readmeDifficulty is the difficulty an exercise README states, as in
// "Difficulty: ★★☆ · Practises: …".
var readmeDifficulty = regexp.MustCompile(`Difficulty: ([★☆]{3})`)

// scheduleHeading is a schedule's heading, with its length:
// "## Half-day workshop (3 h 30 min)".
var scheduleHeading = regexp.MustCompile(`^## .*\((\d+) h(?: (\d+) min)?\)$`)

// startTime is the first cell of a schedule row: hours:minutes from the start.
var startTime = regexp.MustCompile(`^(\d+):(\d\d)$`)

type pageLine struct {
	text string
	num  int
}

// workshopSections reads workshop.md and returns its lines grouped under
// their "## " headings.
func workshopSections(t *testing.T) map[string][]pageLine {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "docs", "workshop.md"))
	require.NoError(t, err)
	defer f.Close()
	sections := map[string][]pageLine{}
	heading := ""
	lines := bufio.NewScanner(f)
	for n := 1; lines.Scan(); n++ {
		line := lines.Text()
		if strings.HasPrefix(line, "## ") {
			heading = line
			continue
		}
		sections[heading] = append(sections[heading], pageLine{line, n})
	}
	require.NoError(t, lines.Err())
	return sections
}

// section returns the lines under the one heading that starts with prefix.
func section(t *testing.T, sections map[string][]pageLine, prefix string) []pageLine {
	t.Helper()
	var found []string
	for h := range sections {
		if strings.HasPrefix(h, prefix) {
			found = append(found, h)
		}
	}
	require.Len(t, found, 1, "workshop.md needs exactly one heading starting with %q", prefix)
	return sections[found[0]]
}

// tableRows returns the cells of each body row of the Markdown tables in
// lines (the header row and the |---| row left out).
func tableRows(lines []pageLine) (rows [][]string, nums []int) {
	inTable := false
	for _, l := range lines {
		if !strings.HasPrefix(l.text, "|") {
			inTable = false
			continue
		}
		if !inTable { // the header row
			inTable = true
			continue
		}
		if strings.HasPrefix(l.text, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(l.text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
		nums = append(nums, l.num)
	}
	return rows, nums
}

// exerciseFolders lists every exercise-* folder of the repository, as
// "04-accept/exercise-your-address".
func exerciseFolders(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	matches, err := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "exercise-*"))
	require.NoError(t, err)
	var dirs []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			dirs = append(dirs, rel(root, m))
		}
	}
	require.NotEmpty(t, dirs, "no exercise folders found")
	sort.Strings(dirs)
	return dirs
}

func TestWorkshopTableListsEveryExerciseFolderAndNoOther(t *testing.T) {
	rows, nums := tableRows(section(t, workshopSections(t), "## All the exercises"))
	require.NotEmpty(t, rows, "workshop.md has no exercise table under \"## All the exercises\"")

	listed := map[string]int{}
	for i, cells := range rows {
		m := exerciseLink.FindStringSubmatch(cells[0])
		if !assert.NotNil(t, m, "workshop.md:%d: the first cell must link an exercise folder, such as [exercise-quit](../04-accept/exercise-quit/)", nums[i]) {
			continue
		}
		if line, dup := listed[m[1]]; dup {
			t.Errorf("workshop.md:%d: %s is listed twice (first on line %d)", nums[i], m[1], line)
		}
		listed[m[1]] = nums[i]
		if assert.GreaterOrEqual(t, len(cells), 2, "workshop.md:%d: no lesson column", nums[i]) {
			assert.Equal(t, strings.Split(m[1], "/")[0], cells[1], "workshop.md:%d: the lesson column names another lesson than the link", nums[i])
		}
	}

	folders := exerciseFolders(t)
	for _, dir := range folders {
		_, ok := listed[dir]
		assert.True(t, ok, "the exercise folder %s is missing from workshop.md's table", dir)
	}
	for dir, line := range listed {
		assert.Contains(t, folders, dir, "workshop.md:%d lists %s, which is not an exercise folder", line, dir)
	}
}

func TestWorkshopDifficultiesMatchTheExerciseReadmes(t *testing.T) {
	root := repoRoot(t)
	rows, nums := tableRows(section(t, workshopSections(t), "## All the exercises"))
	require.NotEmpty(t, rows)
	for i, cells := range rows {
		m := exerciseLink.FindStringSubmatch(cells[0])
		if m == nil || len(cells) < 3 {
			continue // reported by the test above
		}
		given := stars.FindString(cells[2])
		if !assert.NotEmpty(t, given, "workshop.md:%d: %s has no difficulty such as ★★☆", nums[i], m[1]) {
			continue
		}
		readme, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m[1]), "README.md"))
		if !assert.NoError(t, err, "workshop.md:%d: %s has no README", nums[i], m[1]) {
			continue
		}
		stated := readmeDifficulty.FindSubmatch(readme)
		if !assert.NotNil(t, stated, "%s/README.md states no difficulty as \"Difficulty: ★★☆\"", m[1]) {
			continue
		}
		assert.Equal(t, string(stated[1]), given, "workshop.md:%d: the difficulty of %s differs from its README", nums[i], m[1])
	}
}

func TestWorkshopSchedulesAddUpToTheirLength(t *testing.T) {
	sections := workshopSections(t)
	schedules := 0
	for heading, lines := range sections {
		h := scheduleHeading.FindStringSubmatch(heading)
		if h == nil {
			continue
		}
		schedules++
		hours, _ := strconv.Atoi(h[1])
		mins, _ := strconv.Atoi(h[2]) // "" when the heading has whole hours: 0
		length := hours*60 + mins

		rows, nums := tableRows(lines)
		require.NotEmpty(t, rows, "%q has no schedule table", heading)
		elapsed := 0
		for i, cells := range rows {
			s := startTime.FindStringSubmatch(cells[0])
			if !assert.NotNil(t, s, "workshop.md:%d: the first cell must be a start time such as 1:05", nums[i]) || len(cells) < 2 {
				continue
			}
			sh, _ := strconv.Atoi(s[1])
			sm, _ := strconv.Atoi(s[2])
			assert.Equal(t, elapsed, sh*60+sm, "workshop.md:%d: this block starts when the blocks above end, at %d:%02d", nums[i], elapsed/60, elapsed%60)
			minutes, err := strconv.Atoi(cells[1])
			if assert.NoError(t, err, "workshop.md:%d: the second cell must be minutes", nums[i]) {
				elapsed += minutes
			}
		}
		assert.Equal(t, length, elapsed, "%q: the blocks add up to %d min, not %d", heading, elapsed, length)
	}
	assert.Equal(t, 2, schedules, "workshop.md should have two schedules, headed like \"## Half-day workshop (3 h 30 min)\"")
}

func TestWorkshopFullDayNamesEveryExercise(t *testing.T) {
	rows, _ := tableRows(section(t, workshopSections(t), "## Full-day workshop"))
	named := map[string]bool{}
	for _, cells := range rows {
		for _, m := range exerciseLink.FindAllStringSubmatch(strings.Join(cells, "|"), -1) {
			named[m[1]] = true
		}
	}
	for _, dir := range exerciseFolders(t) {
		assert.True(t, named[dir], "the full-day schedule never names %s", dir)
	}
}

// platformLimit is how an exercise README says it does not run fully
// everywhere: "Linux only" (for the whole exercise or a test), or a
// server that "needs Unix".
var platformLimit = regexp.MustCompile(`(?i)linux only|needs unix`)

func TestWorkshopListsEveryExerciseWithAPlatformLimit(t *testing.T) {
	root := repoRoot(t)
	var list []pageLine
	for _, l := range section(t, workshopSections(t), "## Windows") {
		if l.text == "<!-- platform-limits -->" {
			list = []pageLine{}
			continue
		}
		if list != nil {
			if l.text == "" && len(list) > 0 {
				break // the list ends at its first blank line
			}
			list = append(list, l)
		}
	}
	require.NotEmpty(t, list, "workshop.md's Windows section needs a list after <!-- platform-limits -->")
	listed := map[string]bool{}
	for _, l := range list {
		for _, m := range exerciseLink.FindAllStringSubmatch(l.text, -1) {
			listed[m[1]] = true
		}
	}
	for _, dir := range exerciseFolders(t) {
		readme, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dir), "README.md"))
		require.NoError(t, err)
		limited := platformLimit.Match(readme)
		assert.Equal(t, limited, listed[dir], "%s/README.md %s a platform limit (%q), and workshop.md %s it", dir,
			map[bool]string{true: "states", false: "states no"}[limited], platformLimit.String(),
			map[bool]string{true: "lists", false: "does not list"}[listed[dir]])
	}
}

func TestEveryLessonReadmeLinksEachOfItsExercises(t *testing.T) {
	root := repoRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "exercise-*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		lesson := filepath.Dir(dir)
		readme, err := os.ReadFile(filepath.Join(lesson, "README.md"))
		require.NoError(t, err)
		link := "](" + filepath.Base(dir) + "/)"
		assert.Contains(t, string(readme), link, "%s/README.md should link its exercise %s", filepath.Base(lesson), filepath.Base(dir))
	}
}
