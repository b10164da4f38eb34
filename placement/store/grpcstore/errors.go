package grpcstore

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/grpcstore/chunkpb"
)

// kindCodes is the status code of each error kind: the code a client that
// is not ours (grpcurl, a probe) acts on. Several kinds share a code; the
// Error detail keeps the exact kind.
var kindCodes = map[dfms.ErrorKind]codes.Code{
	dfms.Other:           codes.Internal,
	dfms.Invalid:         codes.InvalidArgument,
	dfms.NotExist:        codes.NotFound,
	dfms.Exist:           codes.AlreadyExists,
	dfms.NotEmpty:        codes.FailedPrecondition,
	dfms.NotDir:          codes.FailedPrecondition,
	dfms.IsDir:           codes.FailedPrecondition,
	dfms.Permission:      codes.PermissionDenied,
	dfms.Corrupt:         codes.DataLoss,
	dfms.Conflict:        codes.Aborted,
	dfms.TooLarge:        codes.InvalidArgument,
	dfms.Quota:           codes.ResourceExhausted,
	dfms.Unavailable:     codes.Unavailable,
	dfms.Transient:       codes.Unavailable,
	dfms.ReadOnly:        codes.FailedPrecondition,
	dfms.NotSupported:    codes.Unimplemented,
	dfms.Unauthenticated: codes.Unauthenticated,
	dfms.RateLimited:     codes.ResourceExhausted,
}

// codeKinds is the kind of a status that carries no Error detail: one made
// by gRPC itself (a server that cannot be reached is Unavailable, a message
// over the size limit is ResourceExhausted) or by a server that is not
// ours.
var codeKinds = map[codes.Code]dfms.ErrorKind{
	codes.InvalidArgument:    dfms.Invalid,
	codes.OutOfRange:         dfms.Invalid,
	codes.NotFound:           dfms.NotExist,
	codes.AlreadyExists:      dfms.Exist,
	codes.PermissionDenied:   dfms.Permission,
	codes.Unauthenticated:    dfms.Unauthenticated,
	codes.ResourceExhausted:  dfms.TooLarge,
	codes.FailedPrecondition: dfms.Conflict,
	codes.Aborted:            dfms.Conflict,
	codes.Unimplemented:      dfms.NotSupported,
	codes.Unavailable:        dfms.Unavailable,
	codes.DataLoss:           dfms.Corrupt,
}

// ToStatus turns err into the gRPC status error a server returns: its code
// follows err's kind, its message is err's text, and an Error detail
// carries the kind and the Op of the outermost *dfms.Error. A cancelled or
// expired context becomes Canceled or DeadlineExceeded; an error that is a
// status already (one from the stream) passes through. ToStatus(nil) is
// nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	kind := dfms.KindOf(err)
	code := kindCodes[kind] // Internal for kinds added after this table
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case code == codes.OK:
		code = codes.Internal
	}
	detail := &chunkpb.Error{Kind: uint32(kind)}
	var e *dfms.Error
	if errors.As(err, &e) {
		detail.Op = string(e.Op)
	}
	st, derr := status.New(code, err.Error()).WithDetails(detail)
	if derr != nil { // cannot happen: the detail is a registered message
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// RemoteError is the failure a chunk service reported, as a client sees
// it: the service's address, the status code and the server's message
// (which names the operation that failed there). The client's error wraps
// it in a *dfms.Error with the kind the server sent.
type RemoteError struct {
	Target string // HOST:PORT of the chunk service
	Code   codes.Code
	Msg    string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("%s: %s", e.Target, e.Msg) }

// fromStatus turns an error of a call to the chunk service at target into
// a *dfms.Error of operation op, with the kind the server sent in the
// Error detail, or else the kind of the status code (codeKinds). A
// Canceled or DeadlineExceeded status wraps context.Canceled or
// context.DeadlineExceeded, so errors.Is sees what a local store would
// return.
func fromStatus(op dfms.Op, target string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return dfms.E(op, dfms.Other, fmt.Errorf("%s: %w", target, err))
	}
	switch st.Code() {
	case codes.Canceled:
		return dfms.E(op, dfms.Other, fmt.Errorf("%s: %s: %w", target, st.Message(), context.Canceled))
	case codes.DeadlineExceeded:
		return dfms.E(op, dfms.Other, fmt.Errorf("%s: %s: %w", target, st.Message(), context.DeadlineExceeded))
	}
	kind := codeKinds[st.Code()] // Other for the rest
	for _, d := range st.Details() {
		if e, ok := d.(*chunkpb.Error); ok && knownKind(e.Kind) {
			kind = dfms.ErrorKind(e.Kind)
		}
	}
	return dfms.E(op, kind, &RemoteError{Target: target, Code: st.Code(), Msg: st.Message()})
}

// knownKind reports whether k is a kind this build knows: a newer server
// may send one added since, which the status code then stands for.
func knownKind(k uint32) bool {
	_, ok := kindCodes[dfms.ErrorKind(k)]
	return ok && k <= 255
}
