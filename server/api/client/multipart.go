package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// MultipartUpload is a started multipart upload.
type MultipartUpload struct {
	UploadID  string       `json:"upload_id"`
	PartSize  int64        `json:"part_size"` // every part but the last has this size
	MaxParts  int          `json:"max_parts"`
	ExpiresAt time.Time    `json:"expires_at"`
	FileName  string       `json:"file_name"`
	FolderID  dfms.EntryID `json:"folder_id"`
}

// Part is a stored part of a multipart upload.
type Part struct {
	Number   int    `json:"part_number"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"` // hex SHA-256 of the part
}

// UploadStatus is what the server holds of a multipart upload.
type UploadStatus struct {
	UploadID      string       `json:"upload_id"`
	FileName      string       `json:"file_name"`
	FolderID      dfms.EntryID `json:"folder_id"`
	FileSize      int64        `json:"file_size"`
	PartSize      int64        `json:"part_size"`
	ExpiresAt     time.Time    `json:"expires_at"`
	Parts         []Part       `json:"parts"`
	UploadedBytes int64        `json:"uploaded_bytes"`
}

// InitMultipart starts a multipart upload of a file of size bytes called
// name in parent (Root: the root folder).
func (c *Client) InitMultipart(ctx context.Context, parent dfms.EntryID, name string, size int64, mimeType string) (MultipartUpload, error) {
	var out MultipartUpload
	body := map[string]any{"file_name": name, "file_size": size, "folder_id": PathID(parent)}
	if mimeType != "" {
		body["mime_type"] = mimeType
	}
	err := c.DoJSON(ctx, "client.InitMultipart", Request{Method: http.MethodPost, Path: "/api/v1/files/upload/multipart/init", JSON: body}, &out)
	return out, err
}

// UploadPart stores part n (from 1) of an upload; sending a part again
// replaces it. body is sent again after a token refresh only if it is an
// io.Seeker.
func (c *Client) UploadPart(ctx context.Context, uploadID string, n int, body io.Reader, size int64, progress func(int64)) (Part, error) {
	var out Part
	if body == nil {
		body = bytes.NewReader(nil)
	}
	err := c.DoJSON(ctx, "client.UploadPart", Request{Method: http.MethodPut,
		Path:   fmt.Sprintf("/api/v1/files/upload/multipart/%s/part/%d", escape(uploadID), n),
		Header: http.Header{"Content-Type": {"application/octet-stream"}},
		Body:   body, Size: size, Progress: progress}, &out)
	return out, err
}

// MultipartStatus returns the parts an upload holds. An unknown, expired,
// completed or aborted upload has kind NotExist.
func (c *Client) MultipartStatus(ctx context.Context, uploadID string) (UploadStatus, error) {
	var out UploadStatus
	err := c.DoJSON(ctx, "client.MultipartStatus", Request{Method: http.MethodGet, Path: "/api/v1/files/upload/multipart/" + escape(uploadID)}, &out)
	return out, err
}

// CompleteMultipart commits the parts as a new version of the file.
func (c *Client) CompleteMultipart(ctx context.Context, uploadID, mimeType string) (Entry, error) {
	var out struct {
		File Entry `json:"file"`
	}
	var body any = struct{}{}
	if mimeType != "" {
		body = map[string]string{"mime_type": mimeType}
	}
	err := c.DoJSON(ctx, "client.CompleteMultipart", Request{Method: http.MethodPost,
		Path: "/api/v1/files/upload/multipart/" + escape(uploadID) + "/complete", JSON: body}, &out)
	return out.File, err
}

// AbortMultipart drops an upload and its parts.
func (c *Client) AbortMultipart(ctx context.Context, uploadID string) error {
	return c.DoJSON(ctx, "client.AbortMultipart", Request{Method: http.MethodDelete, Path: "/api/v1/files/upload/multipart/" + escape(uploadID)}, nil)
}

// MultipartOptions tune UploadMultipart.
type MultipartOptions struct {
	MIMEType string
	// UploadID resumes an upload started earlier for the same content,
	// name and folder. If the server no longer has it (expired, completed,
	// aborted) or it does not match, a new upload starts.
	UploadID string
	// Started, if set, is called with the upload id before any part is
	// sent (also when resuming), so the caller can record it for a later
	// resume. An error stops the upload.
	Started func(uploadID string) error
	// Progress, if set, is told the bytes done so far (parts skipped on
	// resume count as done).
	Progress func(done int64)
}

// UploadMultipart uploads size bytes from r as the file called name in
// parent, part by part, resuming o.UploadID when it can. Before a part the
// server already holds is skipped, its size and SHA-256 are checked
// against the local bytes; a part that differs is sent again. Each part the
// server stores is checked against the SHA-256 of what was sent, and the
// committed file against the SHA-256 of all of r (kind Corrupt on a
// mismatch). An interrupted upload leaves its parts on the server until
// the upload expires: call again with the same UploadID to finish it.
func (c *Client) UploadMultipart(ctx context.Context, parent dfms.EntryID, name string, r io.ReaderAt, size int64, o MultipartOptions) (Entry, error) {
	const op dfms.Op = "client.UploadMultipart"
	if size <= 0 {
		// The protocol needs one part at least; an empty file is simpler
		// uploaded whole.
		return c.Upload(ctx, parent, name, bytes.NewReader(nil), UploadOptions{MIMEType: o.MIMEType})
	}
	var (
		id       string
		partSize int64
		have     = map[int]Part{}
	)
	if o.UploadID != "" {
		st, err := c.MultipartStatus(ctx, o.UploadID)
		switch {
		case err == nil && st.FileSize == size && st.FileName == name && (parent == Root || st.FolderID == parent) && st.PartSize > 0:
			id, partSize = st.UploadID, st.PartSize
			for _, p := range st.Parts {
				have[p.Number] = p
			}
		case err == nil:
			c.AbortMultipart(ctx, o.UploadID) // best effort: it is of other content
		case !dfms.Is(err, dfms.NotExist):
			return Entry{}, err
		}
	}
	if id == "" {
		up, err := c.InitMultipart(ctx, parent, name, size, o.MIMEType)
		if err != nil {
			return Entry{}, err
		}
		if up.PartSize <= 0 {
			return Entry{}, dfms.Errorf(op, dfms.Other, "the server suggested no part size")
		}
		id, partSize = up.UploadID, up.PartSize
	}
	if o.Started != nil {
		if err := o.Started(id); err != nil {
			return Entry{}, dfms.E(op, dfms.Other, err)
		}
	}
	report := func(done int64) {
		if o.Progress != nil {
			o.Progress(done)
		}
	}
	whole := &wholeHash{h: sha256.New()}
	parts := int((size + partSize - 1) / partSize)
	for n := 1; n <= parts; n++ {
		off := int64(n-1) * partSize
		length := min(partSize, size-off)
		pr := &partReader{sec: io.NewSectionReader(r, off, length), base: off, h: sha256.New(), whole: whole}
		if p, ok := have[n]; ok && p.Size == length {
			if _, err := io.Copy(io.Discard, pr); err != nil {
				return Entry{}, dfms.E(op, localKind(err), fmt.Errorf("reading part %d: %w", n, err))
			}
			if strings.EqualFold(p.Checksum, pr.sum()) {
				report(off + length)
				continue
			}
			if _, err := pr.Seek(0, io.SeekStart); err != nil {
				return Entry{}, dfms.E(op, dfms.Other, err)
			}
		}
		p, err := c.UploadPart(ctx, id, n, pr, length, func(sent int64) { report(off + sent) })
		if err != nil {
			return Entry{}, err
		}
		if sum := pr.sum(); p.Size != length || !strings.EqualFold(p.Checksum, sum) {
			return Entry{}, dfms.Errorf(op, dfms.Corrupt, fmt.Sprintf("part %d: the server stored %d bytes with SHA-256 %s, sent %d bytes with %s",
				n, p.Size, p.Checksum, length, sum))
		}
	}
	e, err := c.CompleteMultipart(ctx, id, o.MIMEType)
	if err != nil {
		return Entry{}, err
	}
	if sum, ok := whole.sum(size); ok && !strings.EqualFold(e.Checksum, sum) {
		return e, dfms.Errorf(op, dfms.Corrupt, fmt.Sprintf("the stored file has SHA-256 %s, the local file %s (did it change during the upload?)", e.Checksum, sum))
	}
	return e, nil
}

// partReader reads one part of the file, hashing the part (the hash
// restarts when it is rewound) and feeding the whole file's hash.
type partReader struct {
	sec   *io.SectionReader
	base  int64 // the part's offset in the file
	h     hash.Hash
	whole *wholeHash
}

func (p *partReader) Read(b []byte) (int, error) {
	p.whole.mu.Lock()
	defer p.whole.mu.Unlock()
	pos, _ := p.sec.Seek(0, io.SeekCurrent)
	n, err := p.sec.Read(b)
	p.h.Write(b[:n])
	p.whole.feed(p.base+pos, b[:n])
	return n, err
}

func (p *partReader) Seek(offset int64, whence int) (int64, error) {
	p.whole.mu.Lock()
	defer p.whole.mu.Unlock()
	pos, err := p.sec.Seek(offset, whence)
	if err == nil && pos == 0 {
		p.h.Reset()
	}
	return pos, err
}

// sum returns the part's hex SHA-256 so far.
func (p *partReader) sum() string {
	p.whole.mu.Lock()
	defer p.whole.mu.Unlock()
	return hex.EncodeToString(p.h.Sum(nil))
}

// wholeHash hashes a file read in order, where ranges may be read again
// (a part verified, then sent; a part sent twice): bytes below the
// frontier n are not fed twice.
type wholeHash struct {
	// mu guards the fields and the hashes of the part readers: the HTTP
	// transport reads request bodies on its own goroutine.
	mu  sync.Mutex
	h   hash.Hash
	n   int64
	gap bool // a range was skipped: no sum
}

func (w *wholeHash) feed(off int64, b []byte) {
	end := off + int64(len(b))
	switch {
	case end <= w.n:
	case off > w.n:
		w.gap = true
	default:
		w.h.Write(b[w.n-off:])
		w.n = end
	}
}

func (w *wholeHash) sum(size int64) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gap || w.n != size {
		return "", false
	}
	return hex.EncodeToString(w.h.Sum(nil)), true
}
