package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dfms/dfms"
)

// UploadOptions tune Upload.
type UploadOptions struct {
	// Size is the body's length if known (-1 or 0 with an unknown-size
	// body: sent chunked). The server refuses early what is over its limit.
	Size int64
	// MIMEType of the content (default: from the name's extension).
	MIMEType string
	// Progress, if set, is told the bytes sent so far.
	Progress func(sent int64)
}

// Upload stores body as a new version of the file called name in parent
// (Root: the root folder), creating the file if needed. The body streams:
// it is read once, unless the server asks for a new token and body is an
// io.Seeker, in which case it is rewound and sent again.
func (c *Client) Upload(ctx context.Context, parent dfms.EntryID, name string, body io.Reader, o UploadOptions) (Entry, error) {
	const op dfms.Op = "client.Upload"
	h := http.Header{}
	// Percent-encoded, so that any name survives a header; the server
	// decodes names that contain %.
	h.Set("X-File-Name", escape(name))
	h.Set("X-Folder-ID", PathID(parent))
	ct := o.MIMEType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	size := o.Size
	if size == 0 && body != nil {
		size = -1
	}
	if body == nil {
		body, size = strings.NewReader(""), 0
	}
	var out Entry
	err := c.DoJSON(ctx, op, Request{Method: http.MethodPost, Path: "/api/v1/files/upload", Header: h,
		Body: body, Size: size, Progress: o.Progress}, &out)
	return out, err
}

// Download is an open download: the body of one version, or of a range of
// it.
type Download struct {
	Body io.ReadCloser
	// Offset is where Body starts in the file (0 unless a range was
	// granted); Length is Body's length, Size the whole file's.
	Offset, Length, Size int64
	// Checksum is the hex SHA-256 of the whole version (X-Checksum-SHA256).
	Checksum string
	ETag     string
	Version  int64
}

// Open starts a download of version n of a file (0: the current version)
// from byte offset (0: all). If ifRange is an ETag that no longer matches,
// the server sends the whole file: check Offset.
func (c *Client) Open(ctx context.Context, id dfms.EntryID, n int64, offset int64, ifRange string) (*Download, error) {
	const op dfms.Op = "client.Open"
	p := "/api/v1/files/" + PathID(id) + "/download"
	if n > 0 {
		p = fmt.Sprintf("/api/v1/files/%s/versions/%d/download", PathID(id), n)
	}
	h := http.Header{}
	if offset > 0 {
		h.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if ifRange != "" {
			h.Set("If-Range", ifRange)
		}
	}
	resp, err := c.do(ctx, op, Request{Method: http.MethodGet, Path: p, Header: h})
	if err != nil {
		return nil, err
	}
	d := &Download{Body: resp.Body, Length: resp.ContentLength, Checksum: resp.Header.Get("X-Checksum-SHA256"), ETag: resp.Header.Get("ETag")}
	d.Version, _ = strconv.ParseInt(resp.Header.Get("X-File-Version"), 10, 64)
	d.Size = d.Length
	if resp.StatusCode == http.StatusPartialContent {
		var first, last, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err != nil {
			resp.Body.Close()
			return nil, dfms.E(op, dfms.Other, fmt.Errorf("bad Content-Range %q", resp.Header.Get("Content-Range")))
		}
		d.Offset, d.Size = first, total
	}
	return d, nil
}

// DownloadTo streams the current version of a file to w and verifies its
// SHA-256. It returns the bytes written; a mismatch has kind Corrupt (w
// then holds bad bytes).
func (c *Client) DownloadTo(ctx context.Context, id dfms.EntryID, w io.Writer, progress func(int64)) (int64, error) {
	const op dfms.Op = "client.DownloadTo"
	d, err := c.Open(ctx, id, 0, 0, "")
	if err != nil {
		return 0, err
	}
	defer d.Body.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h, progressWriter(0, progress)), d.Body)
	if err != nil {
		return n, dfms.E(op, dfms.Unavailable, err)
	}
	if err := checkSum(op, d.Checksum, h.Sum(nil)); err != nil {
		return n, err
	}
	return n, nil
}

// PartialSuffix ends the name of a partial download next to its target:
// <target>.<first 16 hex digits of the SHA-256>.dfms-part. The checksum in
// the name keeps a partial file of another version from being resumed.
const PartialSuffix = ".dfms-part"

// DownloadFile downloads the current version of a file to the local path
// dst. The bytes go to a partial file beside dst first; if one of the same
// version exists from an interrupted download, only the rest is fetched
// (a Range request). The whole content's SHA-256 is checked against the
// server's before the partial file is renamed to dst (replacing it). A
// mismatch has kind Corrupt and removes the partial file.
func (c *Client) DownloadFile(ctx context.Context, id dfms.EntryID, dst string, progress func(done, total int64)) (Entry, error) {
	const op dfms.Op = "client.DownloadFile"
	e, err := c.Stat(ctx, id)
	if err != nil {
		return e, err
	}
	if e.IsDir() {
		return e, dfms.Errorf(op, dfms.IsDir, e.Name+" is a folder")
	}
	if len(e.Checksum) < 16 {
		return e, dfms.Errorf(op, dfms.Other, "the server sent no checksum for "+e.Name)
	}
	partial := dst + "." + e.Checksum[:16] + PartialSuffix
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return e, dfms.E(op, localKind(err), err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	// Hash what is there already, then append the rest.
	h := sha256.New()
	have, err := io.Copy(h, f)
	if err != nil {
		return e, dfms.E(op, localKind(err), err)
	}
	if have > e.Size { // not ours after all
		have = 0
		h.Reset()
	}
	report := func(done int64) {
		if progress != nil {
			progress(done, e.Size)
		}
	}
	report(have)
	want := e.Checksum
	if have < e.Size || e.Size == 0 {
		etag := `"` + e.Checksum + `"`
		d, err := c.Open(ctx, id, 0, have, etag)
		if err != nil {
			return e, err
		}
		defer d.Body.Close()
		if d.Offset != have { // the version changed: start over
			have = 0
			h.Reset()
		}
		if _, err := f.Seek(have, io.SeekStart); err != nil {
			return e, dfms.E(op, localKind(err), err)
		}
		if err := f.Truncate(have); err != nil {
			return e, dfms.E(op, localKind(err), err)
		}
		want = d.Checksum
		if _, err := io.Copy(io.MultiWriter(f, h, progressWriter(have, report)), d.Body); err != nil {
			if ctx.Err() != nil {
				return e, dfms.E(op, dfms.Other, ctx.Err())
			}
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return e, dfms.E(op, localKind(err), err)
			}
			return e, dfms.E(op, dfms.Unavailable, fmt.Errorf("download interrupted (run again to resume): %w", err))
		}
	}
	if err := checkSum(op, want, h.Sum(nil)); err != nil {
		f.Close()
		f = nil
		os.Remove(partial)
		return e, err
	}
	if err := f.Sync(); err != nil {
		return e, dfms.E(op, localKind(err), err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return e, dfms.E(op, localKind(err), err)
	}
	f = nil
	if err := os.Rename(partial, dst); err != nil {
		return e, dfms.E(op, localKind(err), err)
	}
	syncDir(filepath.Dir(dst))
	return e, nil
}

func checkSum(op dfms.Op, want string, got []byte) error {
	if want == "" {
		return dfms.Errorf(op, dfms.Corrupt, "the server sent no X-Checksum-SHA256 to verify against")
	}
	if g := hex.EncodeToString(got); !strings.EqualFold(g, want) {
		return dfms.Errorf(op, dfms.Corrupt, fmt.Sprintf("checksum mismatch: got SHA-256 %s, want %s", g, want))
	}
	return nil
}

// progressWriter counts bytes from base and reports the running total.
func progressWriter(base int64, fn func(int64)) io.Writer {
	if fn == nil {
		return io.Discard
	}
	return &progressW{n: base, fn: fn}
}

type progressW struct {
	n  int64
	fn func(int64)
}

func (p *progressW) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	p.fn(p.n)
	return len(b), nil
}

// localKind classifies a local file system error.
func localKind(err error) dfms.ErrorKind {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dfms.NotExist
	case errors.Is(err, fs.ErrPermission):
		return dfms.Permission
	case errors.Is(err, fs.ErrExist):
		return dfms.Exist
	}
	return dfms.Other
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
