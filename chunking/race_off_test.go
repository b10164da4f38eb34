//go:build !race

package chunking

const raceEnabled = false
