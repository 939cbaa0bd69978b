package main

// The progress file: which hints a learner has already seen. It lives in
// the user's config directory, outside the repository, so that a pull, a
// reset or a fresh clone leaves it alone. It holds nothing else: whether
// an exercise is done is what its tests say, never a mark in a file.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateEnv names the progress file instead of the default one, for tests
// and for anyone who keeps two copies of the course apart.
const stateEnv = "SOCKETSTEPS_WORKSHOP_STATE"

// state is the progress file's content.
type state struct {
	// HintsShown is how many hints of each exercise were shown.
	HintsShown map[string]int `json:"hints_shown"`
}

// statePath is where the progress file is: $SOCKETSTEPS_WORKSHOP_STATE, or
// socketsteps/workshop.json in the user's config directory
// (~/.config on Linux, ~/Library/Application Support on macOS, %AppData%
// on Windows).
func (c *cli) statePath() (string, error) {
	if p := c.getenv(stateEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no place for the progress file (%v): set %s to a file name", err, stateEnv)
	}
	return filepath.Join(dir, "socketsteps", "workshop.json"), nil
}

// loadState reads the progress file; a missing one is an empty state.
func (c *cli) loadState() (state, string, error) {
	s := state{HintsShown: map[string]int{}}
	file, err := c.statePath()
	if err != nil {
		return s, "", err
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return s, file, nil
	}
	if err != nil {
		return s, file, fmt.Errorf("read the progress file: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, file, fmt.Errorf("the progress file %s is damaged (%v): `go run ./docs/workshop reset-progress` starts it afresh", file, err)
	}
	if s.HintsShown == nil {
		s.HintsShown = map[string]int{}
	}
	return s, file, nil
}

// saveState writes the progress file whole: to a temporary file beside it,
// then renamed over it, so an interrupted write leaves the old one.
func saveState(file string, s state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("save the progress file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".workshop-*.json")
	if err != nil {
		return fmt.Errorf("save the progress file: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save the progress file: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save the progress file: %w", err)
	}
	return nil
}
