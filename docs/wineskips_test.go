package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// CI runs the Windows test binaries under Wine and skips the tests listed
// in .ci/wine/skips, where Wine behaves unlike Windows. Each line there
// must name a test that exists, in a package that exists, for a tag set
// the runner knows, with a reason: a skip that names nothing would hide
// nothing and say something false.
func TestEveryWineSkipNamesARealTestAndSaysWhy(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".ci", "wine", "skips"))
	require.NoError(t, err)
	defer f.Close()

	entries := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries++
		entry, reason, _ := strings.Cut(line, "#")
		fields := strings.Fields(entry)
		if !assert.Len(t, fields, 3, "skips line %d: want PACKAGE TEST TAGS # REASON, got %q", n, line) {
			continue
		}
		pkg, name, tags := fields[0], fields[1], fields[2]
		assert.Contains(t, []string{"main", "solution", "both"}, tags, "skips line %d: tags", n)
		assert.NotEmpty(t, strings.TrimSpace(reason), "skips line %d: %s has no reason", n, name)
		assert.True(t, strings.HasPrefix(pkg, "./"), "skips line %d: package %q should start with ./", n, pkg)
		assert.True(t, definesTest(t, filepath.Join(root, filepath.FromSlash(pkg)), name),
			"skips line %d: %s defines no %s", n, pkg, name)
	}
	require.NoError(t, sc.Err())
	assert.NotZero(t, entries, "the skip list is empty: then say so in .ci/wine/run and drop this test")
}

// definesTest reports whether a _test.go file in dir declares func name.
func definesTest(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	decl := regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(name) + `\(t \*testing\.T\)`)
	for _, file := range files {
		src, err := os.ReadFile(file)
		require.NoError(t, err)
		if decl.Match(src) {
			return true
		}
	}
	return false
}
