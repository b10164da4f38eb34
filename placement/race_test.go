//go:build race

package placement

// raceEnabled is set under the race detector, which slows the lookups the
// tests make tenfold: they make fewer.
const raceEnabled = true
