// Package benchkit holds what the benchmark programs under integration/cmd
// share: byte sizes given as flags, the median of a set of measurements
// and the machine's load.
package benchkit

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
)

// ParseSize reads a byte size such as 512MiB, 64MB or 4096 (the units of
// humanize.ParseBytes). It must be at least 1 byte and at most 1 PiB.
func ParseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<50 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(n), nil
}

// Median returns the median of v, 0 if v is empty.
func Median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// LoadAvg returns the 1-minute load average, or "?" where unknown.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
