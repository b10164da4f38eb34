// Package testenv gives tests the real services they need, and decides
// centrally what happens when a service is missing.
//
// A service is described by an environment variable that the project's
// service scripts (integration/services.sh) export:
//
//	DFMS_TEST_POSTGRES  admin URL of a PostgreSQL cluster, e.g.
//	                    postgres://dfms:PASS@127.0.0.1:55432/postgres?sslmode=disable
//	DFMS_TEST_S3        URL of an S3 server with credentials, e.g.
//	                    s3://ACCESS:SECRET@127.0.0.1:57070/?secure=false
//	DFMS_TEST_REDIS     URL of a Redis server, e.g. redis://:PASS@127.0.0.1:56379
//	DFMS_TEST_VERSITYGW the versitygw program, for tests that run S3 servers
//	                    of their own (a storage cluster whose nodes they kill)
//
// Tests that stop a Redis server run one of their own: RedisServer finds
// the redis-server program (on PATH, where services.sh installs it).
//
// When the variable is unset the test is skipped with a reason, so
// `go test ./...` passes on a bare laptop. When the service is named in
// DFMS_TEST_REQUIRE (a comma-separated list such as "postgres,s3"), or when
// CI is set, a missing service fails the test instead: in CI a skip would
// hide a backend that was never exercised. Two more names are checked by
// their own tests: "fuse" (fusefs/fusetest: /dev/fuse and the right to
// mount) and "tools" (the programs that the mount tests run, such as rsync,
// git and sqlite3, which integration/test.sh installs). "pjdfstest" runs
// the POSIX suite pjdfstest on the real binary's mounts, which takes
// minutes (cmd/dfms): it skips unless required.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Required reports whether a missing service must fail the test rather than
// skip it.
func Required(service string) bool {
	if os.Getenv("CI") != "" {
		return true
	}
	for _, s := range strings.Split(os.Getenv("DFMS_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(s) == service || strings.TrimSpace(s) == "all" {
			return true
		}
	}
	return false
}

// missing skips or fails t for an unavailable service.
func missing(t testing.TB, service, why string) {
	t.Helper()
	if Required(service) {
		t.Fatalf("%s is required (CI or DFMS_TEST_REQUIRE) but unavailable: %s", service, why)
	}
	t.Skipf("%s unavailable (%s); run the tests through `make test` to start it", service, why)
}

// serviceURL returns the URL in the environment variable env that locates
// service, skipping or failing t (as missing does) when env is unset.
func serviceURL(t testing.TB, service, env string) *url.URL {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		missing(t, service, env+" is not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return u
}

// RandomName returns prefix followed by 12 random hex digits: a name for a
// throwaway database or bucket that cannot clash between parallel tests.
func RandomName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// Postgres creates a fresh, empty database in the test cluster and returns
// its URL. The database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	u := serviceURL(t, "postgres", "DFMS_TEST_POSTGRES")
	admin := u.String()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		missing(t, "postgres", err.Error())
	}
	name := RandomName("dfms_test_")
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// S3 returns the URL of a fresh bucket on the test S3 server, in the form the
// s3:// chunk store opens (the store creates the bucket on first use). The
// bucket name is random, so parallel tests never share one.
func S3(t testing.TB) string {
	t.Helper()
	u := serviceURL(t, "s3", "DFMS_TEST_S3")
	u.Path = "/" + strings.ReplaceAll(RandomName("dfms-test-"), "_", "-")
	return u.String()
}

// Redis returns the URL of the test Redis server (DFMS_TEST_REDIS, e.g.
// redis://:PASS@127.0.0.1:56379) with a key prefix of the test's own added
// as the prefix query option (?prefix=dfms_test_…:), which the redis://
// backends put before every key: parallel tests and packages share one
// server and one database but never a key. The keys are not deleted when
// the test ends, so tests should use keys that expire (a rate limiter's
// do, after its window).
func Redis(t testing.TB) string {
	t.Helper()
	u := serviceURL(t, "redis", "DFMS_TEST_REDIS")
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		missing(t, "redis", err.Error())
	}
	conn.Close()
	q := u.Query()
	q.Set("prefix", RandomName("dfms_test_")+":")
	u.RawQuery = q.Encode()
	return u.String()
}

// Versitygw returns the path of the versitygw program (DFMS_TEST_VERSITYGW),
// for tests that start S3 servers of their own. It counts as the "s3"
// service: missing, it skips or fails the test as S3 would.
func Versitygw(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("DFMS_TEST_VERSITYGW")
	if bin == "" {
		missing(t, "s3", "DFMS_TEST_VERSITYGW is not set")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(t, "s3", err.Error())
	}
	return bin
}

// RedisServer returns the path of the redis-server program, for tests
// that start (and stop) a Redis server of their own. It counts as the
// "redis" service: missing, it skips or fails the test as Redis would.
func RedisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis", "no redis-server on PATH")
	}
	return bin
}
