// Package store opens a node's chunk store ([dfms.ChunkStore]) from its URL,
// choosing the backend by scheme:
//
//	file:///var/lib/dfms/chunks    a local directory (package disk); the default
//	/var/lib/dfms/chunks           the same, as a plain path; relative paths work too
//	s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false&region=us-east-1
//	                               an S3 bucket (package s3, which documents the options)
//	grpc://HOST:PORT               a chunk service (dfms chunk-service) over plaintext gRPC
//	grpcs://HOST:PORT?ca=FILE&cert=FILE&key=FILE&server_name=NAME
//	                               the same over TLS: ca is the PEM file of the
//	                               authorities to trust (default the system's),
//	                               cert and key the client's certificate for
//	                               mutual TLS, server_name the name to verify
//	                               (default HOST); package grpcstore documents them
//
// A string is a plain path unless it begins with a URL scheme ("name:"); a
// relative path whose first element holds a colon must be written ./a:b.
// Backends are registered here, explicitly: importing this package links
// every backend, while a program that needs one imports only that one.
package store

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/grpcstore"
	"github.com/dfms/dfms/placement/store/s3"
)

// Open returns the chunk store that rawURL names. It creates what is missing
// (the directory, the bucket); a chunk service's client connects on first
// use. A URL that is malformed or has an unknown
// scheme fails with kind Invalid; errors never show the URL's secret.
func Open(ctx context.Context, rawURL string) (dfms.ChunkStore, error) {
	const op dfms.Op = "store.Open"
	if rawURL == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "empty chunk store URL")
	}
	if !hasScheme(rawURL) {
		return openDisk(rawURL)
	}
	u, err := dfms.ParseSecretURL(rawURL)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("malformed chunk store URL: %w", err))
	}
	switch u.Scheme {
	case "file":
		switch {
		case u.Opaque != "" || u.Host != "" && u.Host != "localhost":
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("chunk store URL %q: want file:///ABSOLUTE/PATH, or a plain path", rawURL))
		case u.RawQuery != "" || u.Fragment != "":
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("chunk store URL %q: a file URL takes no options", rawURL))
		case !path.IsAbs(u.Path):
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("chunk store URL %q: no path", rawURL))
		}
		return openDisk(filepath.FromSlash(u.Path))
	case "s3":
		s, err := s3.Open(ctx, u)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "grpc", "grpcs":
		c, err := grpcstore.Open(ctx, u)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("chunk store URL %s: unknown scheme %q (want file://, s3://, grpc:// or grpcs://)", u.Redacted(), u.Scheme))
}

// openDisk avoids returning a nil *disk.Disk as a non-nil interface.
func openDisk(dir string) (dfms.ChunkStore, error) {
	d, err := disk.Open(dir)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// hasScheme reports whether s begins with a URL scheme followed by a colon
// (RFC 3986: a letter, then letters, digits, '+', '-' or '.').
func hasScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}
