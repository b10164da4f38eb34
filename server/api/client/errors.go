package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dfms/dfms"
)

// Error is a failure the server reported: the status and the API's error
// envelope. It is wrapped in a *dfms.Error whose Kind is Kind().
type Error struct {
	Status    int
	Code      string // e.g. NOT_FOUND; empty if the body was not the envelope
	Message   string
	RequestID string
	// Details is the envelope's details member, if any (raw JSON).
	Details json.RawMessage
	// RetryAfter is the wait a 429 or 503 answer asked for (0: none).
	RetryAfter time.Duration
	// Date is when the server answered, by its clock (the Date header, to
	// the second; zero if absent).
	Date time.Time
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return e.Message
}

// Kind maps the envelope's code (or, for unknown codes, the status) to a
// dfms error kind: the inverse of the server's table.
func (e *Error) Kind() dfms.ErrorKind {
	if k, ok := codeKinds[e.Code]; ok {
		return k
	}
	if strings.HasPrefix(e.Code, "AUTH_") {
		return dfms.Unauthenticated
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable, http.StatusUnprocessableEntity:
		return dfms.Invalid
	case http.StatusUnauthorized:
		return dfms.Unauthenticated
	case http.StatusForbidden:
		return dfms.Permission
	case http.StatusNotFound, http.StatusGone:
		return dfms.NotExist
	case http.StatusConflict, http.StatusPreconditionFailed:
		return dfms.Conflict
	case http.StatusRequestEntityTooLarge:
		return dfms.TooLarge
	case http.StatusTooManyRequests:
		return dfms.RateLimited
	case http.StatusNotImplemented, http.StatusMethodNotAllowed:
		return dfms.NotSupported
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return dfms.Unavailable
	case http.StatusInsufficientStorage:
		return dfms.Quota
	}
	return dfms.Other
}

// codeKinds maps the API's stable error codes to kinds (server/api
// middleware.go, plus the codes handlers answer directly).
var codeKinds = map[string]dfms.ErrorKind{
	"VALIDATION_FAILED":        dfms.Invalid,
	"RANGE_NOT_SATISFIABLE":    dfms.Invalid,
	"NOT_FOUND":                dfms.NotExist,
	"ALREADY_EXISTS":           dfms.Exist,
	"AUTH_USER_EXISTS":         dfms.Exist,
	"NOT_EMPTY":                dfms.NotEmpty,
	"NOT_A_FOLDER":             dfms.NotDir,
	"IS_A_FOLDER":              dfms.IsDir,
	"FORBIDDEN":                dfms.Permission,
	"AUTH_FORBIDDEN":           dfms.Permission,
	"DATA_CORRUPT":             dfms.Corrupt,
	"CONFLICT":                 dfms.Conflict,
	"CHUNKS_MISSING":           dfms.Conflict,
	"TOO_LARGE":                dfms.TooLarge,
	"QUOTA_EXCEEDED":           dfms.Quota,
	"SERVICE_UNAVAILABLE":      dfms.Unavailable,
	"READ_ONLY":                dfms.ReadOnly,
	"NOT_SUPPORTED":            dfms.NotSupported,
	"METHOD_NOT_ALLOWED":       dfms.NotSupported,
	"AUTH_TOKEN_INVALID":       dfms.Unauthenticated,
	"AUTH_TOKEN_MISSING":       dfms.Unauthenticated,
	"AUTH_INVALID_CREDENTIALS": dfms.Unauthenticated,
	"RATE_LIMIT_EXCEEDED":      dfms.RateLimited,
	"INTERNAL_ERROR":           dfms.Other,
}

// Wrap returns e as a dfms error of op, of the kind e maps to.
func (e *Error) Wrap(op dfms.Op) error { return &dfms.Error{Op: op, Kind: e.Kind(), Err: e} }

// ItemError is the API's error envelope's member: of an error answer, and
// of one item of a batch answer (POST /fs/commits, /fs/files, /fs/trash)
// that succeeded.
type ItemError struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	Details   json.RawMessage `json:"details"`
}

// Err returns the item's error as an *Error wrapped for op.
func (e *ItemError) Err(op dfms.Op) error {
	return (&Error{Status: http.StatusOK, Code: e.Code, Message: e.Message, RequestID: e.RequestID, Details: e.Details}).Wrap(op)
}

// readError decodes an error answer and closes its body.
func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID")}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		e.Date = d
	}
	var env struct {
		Error ItemError `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
		if e.Message == "" {
			e.Message = strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
		}
		return e
	}
	// Not the envelope (a proxy, or no body): keep a short excerpt.
	msg := strings.Join(strings.Fields(string(b)), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = "no details"
	}
	e.Message = msg
	return e
}
