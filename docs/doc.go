// Package docs holds no code that lessons use. It exists so that the
// claims of the pages in this folder can be tested:
//
//   - errors_test.go triggers every error of errors.md on loopback,
//     checks how Go classifies it and compares the message with the one
//     the catalogue quotes;
//   - pythonmap_test.go and concepts_test.go prove the behaviour that
//     python-to-go.md and concepts/ describe;
//   - repo_test.go checks the whole repository's Markdown: links and
//     anchors resolve, every Go snippet is the real code of a lesson, and
//     every errors.md anchor a lesson prints exists.
//
// Run them with:
//
//	go test ./docs/
package docs
