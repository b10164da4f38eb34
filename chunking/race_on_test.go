//go:build race

package chunking

// raceEnabled reports whether the race detector is on; the big-data tests
// shrink their inputs under it.
const raceEnabled = true
