package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A worker of no kind, of an unknown kind, or that its configuration
// cannot run, is a usage error (exit 2) that says why.
func TestWorkerUsage(t *testing.T) {
	env(t)
	data := t.TempDir()
	badBrokers := filepath.Join(data, "bad-brokers.yaml")
	writeFile(t, badBrokers, "events:\n  brokers: [nohost]\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"worker"}, "needs a kind: gc, replication, health, relay"},
		{[]string{"worker", "sweeper"}, `unknown worker "sweeper"`},
		{[]string{"worker", "gc", "--data", data, "extra"}, "unknown command"},
		{[]string{"worker", "replication", "--data", data}, "configure storage.nodes"},
		{[]string{"worker", "health", "--data", data}, "configure storage.nodes"},
		{[]string{"worker", "relay", "--data", data}, "configure events.brokers"},
		{[]string{"worker", "relay", "--data", data, "--config", badBrokers}, "events.brokers"},
		{[]string{"worker", "gc", "--data", data, "--addr", "nowhere"}, "worker.addr"},
	} {
		code, _, errs := dfmsRun(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("dfms %s: exit %d, %q; want exit 2 saying %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
	t.Setenv("DFMS_GC_INTERVAL", "-1s")
	if code, _, errs := dfmsRun(t, "worker", "gc", "--data", data); code != 2 || !strings.Contains(errs, "positive gc.interval") {
		t.Errorf("dfms worker gc with the collector off: exit %d, %q; want exit 2 asking for a positive gc.interval", code, errs)
	}
}
