module github.com/socketsteps/socketsteps

go 1.22

require (
	github.com/fsnotify/fsnotify v1.9.0
	github.com/pmezard/go-difflib v1.0.0
	github.com/rogpeppe/go-internal v1.13.1
	github.com/stretchr/testify v1.10.0
	golang.org/x/net v0.35.0
	golang.org/x/sys v0.30.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	golang.org/x/tools v0.22.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
