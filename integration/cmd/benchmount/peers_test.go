//go:build linux

package main

import (
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPeerBinPath(t *testing.T) {
	for _, p := range peers {
		got := peerBinPath("/cache/dfms/benchmount", p)
		want := "/cache/dfms/benchmount/" + p.name + "-" + p.version + "/" + p.name
		if got != want {
			t.Errorf("peerBinPath(%s) = %q, want %q", p.name, got, want)
		}
	}
	if !isPeer("rclone") || !isPeer("juicefs") || isPeer("dfms") || isPeer("local") {
		t.Error("isPeer: wrong set")
	}
	for _, p := range peers {
		if !slices.Contains(allTargets, p.name) {
			t.Errorf("peer %s is not a target", p.name)
		}
	}
}

func TestRcloneMountArgs(t *testing.T) {
	got := rcloneMountArgs("/w/rclone.conf", "/img/rclone/data", "/w/mnt-rclone", "/img/rclone/cache")
	want := []string{"mount", "/img/rclone/data", "/w/mnt-rclone",
		"--config", "/w/rclone.conf", "--vfs-cache-mode", "full", "--cache-dir", "/img/rclone/cache"}
	if !slices.Equal(got, want) {
		t.Errorf("rcloneMountArgs = %q, want %q", got, want)
	}
}

func TestJuiceFSArgs(t *testing.T) {
	format := juicefsFormatArgs("/img/juicefs/meta.db", "/img/juicefs/data")
	want := []string{"--no-agent", "format", "--storage", "file", "--bucket", "/img/juicefs/data/",
		"sqlite3:///img/juicefs/meta.db", "bench"}
	if !slices.Equal(format, want) {
		t.Errorf("juicefsFormatArgs = %q, want %q", format, want)
	}
	// A bucket given with its slash keeps one.
	if got := juicefsFormatArgs("/m.db", "/d/"); got[5] != "/d/" {
		t.Errorf("bucket %q, want /d/", got[5])
	}
	mount := juicefsMountArgs("/img/juicefs/meta.db", "/w/mnt-juicefs", "/img/juicefs/cache")
	want = []string{"--no-agent", "mount", "--no-usage-report", "--backup-meta", "0",
		"--cache-dir", "/img/juicefs/cache", "sqlite3:///img/juicefs/meta.db", "/w/mnt-juicefs"}
	if !slices.Equal(mount, want) {
		t.Errorf("juicefsMountArgs = %q, want %q", mount, want)
	}
}

func TestModDir(t *testing.T) {
	dir, err := modDir([]byte(`{"Path": "github.com/juicedata/juicefs", "Version": "v1.4.1", "Dir": "/mod/github.com/juicedata/juicefs@v1.4.1"}`))
	if err != nil || dir != "/mod/github.com/juicedata/juicefs@v1.4.1" {
		t.Errorf("modDir = %q, %v", dir, err)
	}
	for _, js := range []string{
		`{"Path": "x", "Version": "v9", "Error": "unknown revision v9"}`,
		`{"Path": "x", "Version": "v9"}`,
		`go: not json`,
		``,
	} {
		if dir, err := modDir([]byte(js)); err == nil {
			t.Errorf("modDir(%q) = %q, want an error", js, dir)
		}
	}
}

func TestPeerEnv(t *testing.T) {
	t.Setenv("RCLONE_CONFIG", "/elsewhere")
	t.Setenv("JFS_SUPERVISOR", "1")
	t.Setenv("__DAEMON_STAGE", "1")
	t.Setenv("XDG_CONFIG_HOME", "/mine")
	t.Setenv("HOME", "/home/me")
	t.Setenv("KEEP_ME", "1")
	env := peerEnv("/w/home-rclone")
	has := func(prefix string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, prefix) })
	}
	for _, gone := range []string{"RCLONE_CONFIG=", "JFS_SUPERVISOR=", "__DAEMON_STAGE=", "XDG_CONFIG_HOME=/mine", "HOME=/home/me"} {
		if has(gone) {
			t.Errorf("peerEnv keeps %s", gone)
		}
	}
	for _, kept := range []string{"KEEP_ME=1", "HOME=/w/home-rclone", "XDG_CONFIG_HOME=/w/home-rclone/.config", "XDG_CACHE_HOME=/w/home-rclone/.cache"} {
		if !has(kept) {
			t.Errorf("peerEnv lacks %s", kept)
		}
	}
	if env := peerEnv(""); !slices.Contains(env, "HOME=/home/me") {
		t.Error(`peerEnv("") changed HOME`)
	}
}

func TestInfoLine(t *testing.T) {
	for l, want := range map[string]bool{
		`time=2026-12-07T21:00:00Z level=INFO msg="mounted"`:                                  true,
		`time=2026-12-07T21:00:00Z level=WARN msg="slow"`:                                     false,
		`2026/12/07 21:00:00.000000 juicefs[123] <INFO>: Meta address: sqlite3://x [xx.go:1]`: true,
		`2026/12/07 21:00:00.000000 juicefs[123] <WARNING>: x [xx.go:1]`:                      false,
		`2026/12/07 21:00:00 INFO  : vfs cache: cleaned`:                                      true,
		`2026/12/07 21:00:00 NOTICE: x: can't do that`:                                        false,
		`2026/12/07 21:00:00 ERROR : x: failed`:                                               false,
	} {
		if got := infoLine(l); got != want {
			t.Errorf("infoLine(%q) = %v, want %v", l, got, want)
		}
	}
}

func TestSigtermExit(t *testing.T) {
	for code, want := range map[int]bool{143: true, 0: false, 1: false, 137: false} {
		err := exec.Command("sh", "-c", "exit "+strconv.Itoa(code)).Run()
		if got := sigtermExit(err); got != want {
			t.Errorf("exit %d: sigtermExit(%v) = %v, want %v", code, err, got, want)
		}
	}
	if sigtermExit(errors.New("exit status 143")) {
		t.Error("sigtermExit took a plain error for an exit status")
	}
}

func TestSubsetKeepsColumnOrder(t *testing.T) {
	got, err := subset("remote,juicefs,local", allTargets, "target")
	if err != nil || !slices.Equal(got, []string{"local", "juicefs", "remote"}) {
		t.Errorf("subset = %q, %v", got, err)
	}
	if _, err := subset("nfs", allTargets, "target"); err == nil {
		t.Error("subset accepted an unknown target")
	}
}
