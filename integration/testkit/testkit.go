// Package testkit holds the scaffolding that tests across DFMS share: a
// file layer on real, local components (SQLite metadata and a disk chunk
// store in the test's temporary directory) with one user, deterministic
// random bytes, an assertion on error kinds, a wait for a condition, a
// buffer that concurrent writers may share and an HTTP GET.
//
// It imports the file layer and the stores it is built on, so the
// internal tests of those packages (and of the root package and chunking)
// cannot use it; every other test can.
package testkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/sqlite"
)

// Email is the address of the user NewStack creates.
const Email = "owner@example.com"

// Options configure NewStack. The zero value is SQLite and a disk store
// under t.TempDir(), the file layer's default options and one user.
type Options struct {
	// Files are the file layer's options (chunking parameters, retention…).
	Files files.Options
	// Meta, if set, is the metadata store to use instead of a fresh
	// SQLite database. The caller closes it.
	Meta meta.Store
	// Chunks, if set, is the chunk store to use instead of a fresh disk
	// store. The caller closes it.
	Chunks dfms.ChunkStore
	// WrapMeta, if set, wraps the metadata store as the file layer sees
	// it (to observe or break its calls). The user is created through it.
	WrapMeta func(meta.Store) meta.Store
	// WrapChunks, if set, wraps the chunk store as the file layer sees it.
	WrapChunks func(dfms.ChunkStore) dfms.ChunkStore
	// NoUser leaves the store without users, for tests that register
	// their own.
	NoUser bool
}

// Stack is a file layer on real stores. The stores NewStack opens are
// closed when the test ends.
type Stack struct {
	// Meta is the metadata store as the file layer sees it (wrapped by
	// Options.WrapMeta).
	Meta meta.Store
	// Chunks is the chunk store as the file layer sees it (wrapped by
	// Options.WrapChunks).
	Chunks dfms.ChunkStore
	// Disk is the disk chunk store under ChunkDir, unless Options.Chunks
	// replaced it; then both are zero.
	Disk     *disk.Disk
	ChunkDir string
	// Files is the file layer.
	Files *files.Service
	// User is the account Email (zero with Options.NoUser); its root
	// folder is User.Root.
	User meta.User
}

// NewStack builds a file layer as o says and, unless o.NoUser, creates the
// user Email. It fails t at once if anything cannot be opened.
func NewStack(t testing.TB, o Options) *Stack {
	t.Helper()
	s := &Stack{Meta: o.Meta, Chunks: o.Chunks}
	if s.Meta == nil {
		s.Meta = OpenSQLite(t)
	}
	if s.Chunks == nil {
		s.ChunkDir = filepath.Join(t.TempDir(), "chunks")
		d, err := disk.Open(s.ChunkDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		s.Disk, s.Chunks = d, d
	}
	if o.WrapMeta != nil {
		s.Meta = o.WrapMeta(s.Meta)
	}
	if o.WrapChunks != nil {
		s.Chunks = o.WrapChunks(s.Chunks)
	}
	svc, err := files.New(s.Meta, s.Chunks, o.Files)
	if err != nil {
		t.Fatal(err)
	}
	s.Files = svc
	if !o.NoUser {
		s.User, err = s.Meta.CreateUser(context.Background(), meta.User{Email: Email, PasswordHash: "x", Active: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// OpenSQLite opens a fresh SQLite metadata store in t.TempDir(), closed
// when the test ends.
func OpenSQLite(t testing.TB) meta.Store {
	t.Helper()
	m, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// RandBytes returns n pseudo-random bytes, the same for the same seed;
// RandBytes(seed, n) is a prefix of RandBytes(seed, m) for m > n.
func RandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// WantKind fails t at once unless err is an error of kind k. what, if
// given, says what returned err: a format and its arguments.
func WantKind(t testing.TB, err error, k dfms.ErrorKind, what ...any) {
	t.Helper()
	if !dfms.Is(err, k) {
		t.Fatalf("%sgot error %v (kind %q), want kind %q", prefix(what), err, dfms.KindOf(err), k)
	}
}

// Eventually calls cond until it returns true, and fails t at once if it
// has not within timeout. what, if given, says what was awaited: a format
// and its arguments, formatted only on failure.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%snot within %v", prefix(what), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// prefix formats what (a format and its arguments) as the start of a
// failure message.
func prefix(what []any) string {
	if len(what) == 0 {
		return ""
	}
	format, ok := what[0].(string)
	switch {
	case !ok:
		return fmt.Sprint(what...) + ": "
	case len(what) == 1:
		return format + ": " // not a format: it may hold a % sign
	}
	return fmt.Sprintf(format, what[1:]...) + ": "
}

// OK fails t at once if err is not nil.
func OK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Must returns v, failing the test given to the returned function at once
// if err is not nil: Must(m.GetUser(ctx, id))(t).
func Must[T any](v T, err error) func(t testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago: nothing listens there until a test starts a server on it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RunCases runs the cases of a conformance suite (vfstest, metatest)
// over subjects of type S, a backend or a store: case testX runs as
// subtest X, on a subject that open makes for that subtest.
func RunCases[S any](t *testing.T, open func(t *testing.T) S, cases ...func(t *testing.T, s S)) {
	t.Helper()
	for _, c := range cases {
		name := runtime.FuncForPC(reflect.ValueOf(c).Pointer()).Name()
		name, ok := strings.CutPrefix(name[strings.LastIndexByte(name, '.')+1:], "test")
		if !ok || name == "" {
			t.Fatalf("suite case %s: not named testX", name)
		}
		t.Run(name, func(t *testing.T) { c(t, open(t)) })
	}
}
