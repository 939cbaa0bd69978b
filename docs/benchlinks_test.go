package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Lessons 05-08 name their rows in docs/benchmarks.md and link the
// tables that hold them; this keeps those words true when the page is
// regenerated.
func TestLessonsNameBenchmarkRowsThatTheLinkedTablesHold(t *testing.T) {
	root := repoRoot(t)
	page, err := os.ReadFile(filepath.Join(root, "docs", "benchmarks.md"))
	require.NoError(t, err)
	sections := markdownSections(string(page))

	rowNames := regexp.MustCompile("`(0[5-8] [a-z]+)`")
	tableLinks := regexp.MustCompile(`\(\.\./docs/benchmarks\.md#([a-z0-9-]+)\)`)
	for _, lesson := range []string{"05-loop", "06-goroutines", "07-select", "08-socketserver"} {
		readme, err := os.ReadFile(filepath.Join(root, lesson, "README.md"))
		require.NoError(t, err)
		_, part, ok := strings.Cut(string(readme), "## Side by side with the other servers")
		require.True(t, ok, "%s/README.md has no side-by-side section", lesson)
		part, _, _ = strings.Cut(part, "\n## ")

		names := rowNames.FindAllStringSubmatch(part, -1)
		require.NotEmpty(t, names, "%s names no row", lesson)
		for _, link := range tableLinks.FindAllStringSubmatch(part, -1) {
			anchor := link[1]
			body, ok := sections[anchor]
			require.True(t, ok, "%s links #%s, which benchmarks.md does not have", lesson, anchor)
			if anchor == "targets" {
				continue // "where it has one": not every lesson has a target
			}
			for _, n := range names {
				assert.Contains(t, body, "| "+n[1]+" |", "%s says its row %q is in #%s", lesson, n[1], anchor)
			}
		}
	}
}

// markdownSections maps each heading's GitHub anchor to the text under it,
// up to the next heading.
func markdownSections(page string) map[string]string {
	sections := map[string]string{}
	var anchor string
	var body strings.Builder
	flush := func() {
		if anchor != "" {
			sections[anchor] = body.String()
		}
		body.Reset()
	}
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "#") {
			flush()
			heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
			anchor = slug(heading)
			continue
		}
		body.WriteString(line)
		body.WriteString("\n")
	}
	flush()
	return sections
}
