package dfms

import (
	"errors"
	"strings"
)

// Op names the operation that failed, as "package.Method" (for example
// "meta/sqlite.CommitVersion"). It is for people reading logs.
type Op string

// ErrorKind classifies an error so that the edges can translate it: the REST API
// maps an ErrorKind to an HTTP status, the mount maps it to an errno. Kinds are
// append-only: their numeric values may be stored or logged.
type ErrorKind uint8

// The error kinds.
const (
	Other           ErrorKind = iota // unclassified; an internal error (HTTP 500, EIO)
	Invalid                          // bad input from the caller (400, EINVAL)
	NotExist                         // no such item, or not visible to the caller (404, ENOENT)
	Exist                            // the item already exists (409, EEXIST)
	NotEmpty                         // directory not empty (409, ENOTEMPTY)
	NotDir                           // a path component is not a directory (400, ENOTDIR)
	IsDir                            // the operation needs a non-directory (400, EISDIR)
	Permission                       // the caller may not do this (403, EACCES)
	Corrupt                          // stored bytes failed verification (500, EIO); never served
	Conflict                         // the state changed underneath (a cycle, a stale base, a race) (409)
	TooLarge                         // the input exceeds a size limit (413, EFBIG)
	Quota                            // the owner's quota is exhausted (507, EDQUOT)
	Unavailable                      // a dependency is down; the caller may retry later (503, EIO)
	Transient                        // a retryable failure (serialization, deadlock, busy); retried internally
	ReadOnly                         // the item cannot be written (a committed version, .versions) (403, EROFS)
	NotSupported                     // the operation is not supported here (501, ENOTSUP)
	Unauthenticated                  // no valid credentials (401, EACCES)
	RateLimited                      // too many requests; retry later (429, EAGAIN)
)

var kindNames = [...]string{
	Other:           "internal error",
	Invalid:         "invalid argument",
	NotExist:        "does not exist",
	Exist:           "already exists",
	NotEmpty:        "directory not empty",
	NotDir:          "not a directory",
	IsDir:           "is a directory",
	Permission:      "permission denied",
	Corrupt:         "corrupt",
	Conflict:        "conflict",
	TooLarge:        "too large",
	Quota:           "quota exceeded",
	Unavailable:     "unavailable",
	Transient:       "transient failure",
	ReadOnly:        "read-only",
	NotSupported:    "not supported",
	Unauthenticated: "unauthenticated",
	RateLimited:     "rate limited",
}

// String returns the kind's short description, e.g. "corrupt".
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown kind"
}

// Error is the error type of DFMS: an operation, a kind and the underlying
// error. It implements Unwrap, so errors.Is and errors.As see through it.
type Error struct {
	Op   Op
	Kind ErrorKind
	Err  error
}

// E builds an *Error. If kind is Other and err already carries a kind, that
// kind is kept, so wrapping never loses a classification.
func E(op Op, kind ErrorKind, err error) error {
	if kind == Other {
		kind = KindOf(err)
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

// Errorf is E with a message and no underlying error.
func Errorf(op Op, kind ErrorKind, msg string) error {
	return &Error{Op: op, Kind: kind, Err: errors.New(msg)}
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(string(e.Op))
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the outermost *Error in err's chain that has a
// kind other than Other, or Other if there is none.
func KindOf(err error) ErrorKind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Other
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Other
}

// Is reports whether err has kind k.
func Is(err error, k ErrorKind) bool { return err != nil && KindOf(err) == k }
