//go:build race

package fusefs_test

// raceEnabled is true in builds with the race detector.
const raceEnabled = true
