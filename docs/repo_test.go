package docs

// Checks over the whole repository's Markdown and Go files, run by
// `go test ./...` and so by CI:
//
//   - every relative link and #anchor resolves;
//   - every ```go block is the real code of a file in the repository;
//   - every errors.md anchor that a program prints exists.

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	anchors := map[string]map[string]bool{} // read each file's anchors once
	for _, md := range filesEnding(t, root, ".md") {
		for _, l := range markdownLinks(t, md) {
			if err := checkLink(md, l.target, anchors); err != nil {
				t.Errorf("%s:%d: link %q: %v", rel(root, md), l.line, l.target, err)
			}
		}
	}
}

// A Go snippet in Markdown is preceded, on the line just above its
// ```go fence, by a marker naming the code it shows:
//
//	<!-- code: 04-accept/main.go -->                        the whole file
//	<!-- code: 04-accept/main.go func explain -->           a function
//	<!-- code: 08-socketserver/main.go func Server.Serve --> a method
//	<!-- code: 04-accept/main.go type server -->            a type
//	<!-- code: 04-accept/main.go const wsaEADDRINUSE -->    a const (or var) declaration, with its group
//
// The path is relative to the repository's root. The snippet must equal
// the declaration's source text, with or without its doc comment.
var codeMarker = regexp.MustCompile(`^<!-- code: (\S+)(?: (func|type|const|var) (\S+))? -->$`)

func TestSnippetsMatchTheSource(t *testing.T) {
	root := repoRoot(t)
	for _, md := range filesEnding(t, root, ".md") {
		for _, s := range goSnippets(t, md) {
			where := fmt.Sprintf("%s:%d", rel(root, md), s.line)
			m := codeMarker.FindStringSubmatch(s.marker)
			if m == nil {
				t.Errorf("%s: a ```go block must follow a marker such as <!-- code: 04-accept/main.go func explain --> on the line above; found %q", where, s.marker)
				continue
			}
			wants, err := declarationText(filepath.Join(root, filepath.FromSlash(m[1])), m[2], m[3])
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !matchesAny(s.code, wants) {
				assert.Equal(t, wants[0], strings.Trim(s.code, "\n"), "%s: the snippet differs from %s; copy it again from the source", where, strings.TrimPrefix(strings.TrimSuffix(s.marker, " -->"), "<!-- code: "))
			}
		}
	}
}

func TestEveryErrorHintPointsToACatalogueEntry(t *testing.T) {
	root := repoRoot(t)
	anchors := anchorsOf(t, filepath.Join(root, "docs", "errors.md"))
	hint := regexp.MustCompile(`docs/errors\.md#([A-Za-z0-9_-]+)`)
	for _, file := range filesEnding(t, root, ".go") {
		src, err := os.ReadFile(file)
		require.NoError(t, err)
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range hint.FindAllStringSubmatch(line, -1) {
				assert.True(t, anchors[m[1]], "%s:%d: docs/errors.md has no entry #%s", rel(root, file), i+1, m[1])
			}
		}
	}
}

func TestTheCatalogueHasEveryAnchorTheLessonsWereGiven(t *testing.T) {
	anchors := anchorsOf(t, "errors.md")
	for _, a := range []string{
		"eaddrinuse", "eaddrnotavail", "eacces", "econnrefused", "econnreset", "epipe",
		"timeout", "eof", "closed", "no-such-host", "emfile", "emsgsize", "time-wait",
		"eperm", "eafnosupport",
	} {
		assert.True(t, anchors[a], "errors.md should have an entry #%s", a)
	}
}

func TestEveryCatalogueEntryIsReproducedByATest(t *testing.T) {
	page, err := os.ReadFile("errors.md")
	require.NoError(t, err)
	tests := testFunctions(t)
	entries := regexp.MustCompile(`(?m)^<a id="([a-z0-9-]+)"></a>\n## `).FindAllStringSubmatchIndex(string(page), -1)
	require.NotEmpty(t, entries)
	named := regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	for i, e := range entries {
		anchor := string(page[e[2]:e[3]])
		end := len(page)
		if i+1 < len(entries) {
			end = entries[i+1][0]
		}
		section := string(page[e[0]:end])

		messages := quotedMessages(section)
		assert.NotEmpty(t, messages, "#%s quotes no message (<!-- message: key --> and a ```text block)", anchor)
		checked := map[string]bool{}
		var names []string
		for _, m := range named.FindAllStringSubmatch(section, -1) {
			name := m[1]
			names = append(names, name)
			keys, ok := tests[name]
			if !assert.True(t, ok, "#%s names %s, which is not a test in docs/", anchor, name) {
				continue
			}
			for _, k := range keys {
				checked[k] = true
			}
		}
		assert.NotEmpty(t, names, "#%s names no test that makes it happen", anchor)
		for key := range messages {
			assert.True(t, checked[key], "#%s quotes message %q, but none of its tests %v compares it (checkMessage(t, %q, err))", anchor, key, names, key)
		}
	}
}

// ---- Markdown ----

type link struct {
	line   int
	target string
}

var (
	inlineLink   = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink      = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	htmlLink     = regexp.MustCompile(`(?i)<(?:a|img)\s[^>]*(?:href|src)="([^"]+)"`)
	inlineCode   = regexp.MustCompile("`[^`]*`")
	fence        = regexp.MustCompile("^\\s{0,3}(```+|~~~+)\\s*([^\\s`]*)")
	explicitID   = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	heading      = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	headingLink  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	htmlTag      = regexp.MustCompile(`<[^>]+>`)
	lineFragment = regexp.MustCompile(`^L(\d+)(?:-L(\d+))?$`)
)

// markdownLines calls f for each line of a Markdown file with whether it
// is inside a fenced code block, and the fence's info word on its first
// line.
func markdownLines(t *testing.T, path string, f func(n int, line string, inFence bool, fenceInfo string)) {
	t.Helper()
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	var open string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := fence.FindStringSubmatch(line)
		switch {
		case open == "" && m != nil:
			open = m[1]
			f(n, line, true, m[2])
		case open != "" && m != nil && strings.HasPrefix(m[1], open[:1]) && len(m[1]) >= len(open) && m[2] == "":
			open = ""
			f(n, line, true, "")
		default:
			f(n, line, open != "", "")
		}
	}
	require.NoError(t, sc.Err())
}

func markdownLinks(t *testing.T, path string) []link {
	var links []link
	markdownLines(t, path, func(n int, line string, inFence bool, _ string) {
		if inFence {
			return
		}
		line = inlineCode.ReplaceAllString(line, "")
		for _, re := range []*regexp.Regexp{inlineLink, refLink, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				links = append(links, link{n, m[1]})
			}
		}
	})
	return links
}

// checkLink reports whether target, a link in the Markdown file md,
// leads to something that exists.
func checkLink(md, target string, cache map[string]map[string]bool) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if u.Scheme != "" || strings.HasPrefix(target, "//") {
		return nil // the web is not checked: the tests run offline
	}
	path := md
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("absolute paths break outside GitHub; use a relative path")
		}
		path = filepath.Join(filepath.Dir(md), filepath.FromSlash(u.Path))
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no such file or folder")
	}
	if u.Fragment == "" {
		return nil
	}
	if info.IsDir() {
		path = filepath.Join(path, "README.md")
	}
	if m := lineFragment.FindStringSubmatch(u.Fragment); m != nil && !strings.HasSuffix(path, ".md") {
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines := strings.Count(string(src), "\n") + 1
		for _, n := range m[1:] {
			var line int
			if n == "" {
				continue
			}
			if _, err := fmt.Sscan(n, &line); err != nil || line > lines {
				return fmt.Errorf("%s has only %d lines", filepath.Base(path), lines)
			}
		}
		return nil
	}
	if !strings.HasSuffix(path, ".md") {
		return fmt.Errorf("#%s: only Markdown files have anchors", u.Fragment)
	}
	anchors, ok := cache[path]
	if !ok {
		anchors, err = readAnchors(path)
		if err != nil {
			return err
		}
		cache[path] = anchors
	}
	if !anchors[u.Fragment] {
		return fmt.Errorf("%s has no heading or <a id> for #%s", filepath.Base(path), u.Fragment)
	}
	return nil
}

func anchorsOf(t *testing.T, path string) map[string]bool {
	t.Helper()
	anchors, err := readAnchors(path)
	require.NoError(t, err)
	return anchors
}

// readAnchors returns the anchors GitHub makes for a Markdown file: one
// per heading (see slug) and one per <a id="..."> or <a name="...">.
func readAnchors(path string) (map[string]bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	var open string
	for _, line := range strings.Split(string(src), "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			if open == "" {
				open = m[1]
			} else if strings.HasPrefix(m[1], open[:1]) && m[2] == "" {
				open = ""
			}
			continue
		}
		if open != "" {
			continue
		}
		for _, m := range explicitID.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			s := slug(m[2])
			if n := seen[s]; n > 0 {
				anchors[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				anchors[s] = true
			}
			seen[s]++
		}
	}
	return anchors, nil
}

// slug turns a heading into its anchor as GitHub does: the text as
// shown (links reduced to their text, no tags, no backticks), lower
// case, punctuation dropped except - and _, spaces turned into -.
func slug(text string) string {
	text = headingLink.ReplaceAllString(text, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

type snippet struct {
	line   int
	marker string // the line above the fence
	code   string
}

// goSnippets returns the ```go blocks of a Markdown file.
func goSnippets(t *testing.T, path string) []snippet {
	var out []snippet
	var prev string
	var cur *snippet
	var code strings.Builder
	markdownLines(t, path, func(n int, line string, inFence bool, info string) {
		switch {
		case cur == nil && inFence && strings.EqualFold(info, "go"):
			cur = &snippet{line: n, marker: strings.TrimSpace(prev)}
			code.Reset()
		case cur != nil && inFence && fence.MatchString(line) && info == "":
			cur.code = code.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(line + "\n")
		}
		prev = line
	})
	return out
}

func matchesAny(code string, wants []string) bool {
	code = strings.Trim(code, "\n")
	for _, w := range wants {
		if code == w {
			return true
		}
	}
	return false
}

// declarationText returns the source text of the named declaration in a
// Go file: first with its doc comment, then without. With no kind, the
// whole file.
func declarationText(path, kind, name string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("marker names %s, which cannot be read: %v", filepath.Base(path), err)
	}
	if kind == "" {
		return []string{strings.Trim(string(src), "\n")}, nil
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	text := func(doc *ast.CommentGroup, node ast.Node) []string {
		end := fset.Position(node.End()).Offset
		bare := string(src[fset.Position(node.Pos()).Offset:end])
		if doc == nil {
			return []string{bare}
		}
		return []string{string(src[fset.Position(doc.Pos()).Offset:end]), bare}
	}
	for _, decl := range file.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if kind == "func" && funcName(d) == name {
				return text(d.Doc, d), nil
			}
		case *ast.GenDecl:
			if d.Tok.String() != kind {
				continue
			}
			for _, spec := range d.Specs {
				var names []*ast.Ident
				switch s := spec.(type) {
				case *ast.TypeSpec:
					names = []*ast.Ident{s.Name}
				case *ast.ValueSpec:
					names = s.Names
				}
				for _, id := range names {
					if id.Name == name {
						return text(d.Doc, d), nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("marker names %s %s, which %s does not declare", kind, name, filepath.Base(path))
}

// funcName is "name" for a function and "Type.name" for a method.
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	typ := d.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if index, ok := typ.(*ast.IndexExpr); ok { // a generic receiver
		typ = index.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

// testFunctions maps each test function of this package (on every
// platform: build tags are ignored) to the message keys it passes to
// checkMessage.
func testFunctions(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	tests := map[string][]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		file, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") {
				continue
			}
			keys := tests[fn.Name.Name]
			if keys == nil {
				keys = []string{}
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) < 2 {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "checkMessage" {
					if lit, ok := call.Args[1].(*ast.BasicLit); ok {
						keys = append(keys, strings.Trim(lit.Value, `"`))
					}
				}
				return true
			})
			tests[fn.Name.Name] = keys
		}
	}
	return tests
}

// ---- files ----

// repoRoot is the folder holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above %s", dir)
		dir = parent
	}
}

// filesEnding lists the repository's files with the given suffix,
// leaving out hidden folders such as .git.
func filesEnding(t *testing.T, root, suffix string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, suffix) {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}
