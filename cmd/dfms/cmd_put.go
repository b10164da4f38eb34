package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

type putOptions struct {
	clientOptions
	threshold byteSize
	progress  bool
}

func newPutCmd() *cobra.Command {
	o := putOptions{threshold: 64 << 20}
	cmd := o.command(&cobra.Command{
		Use:   "put LOCAL [REMOTE_PATH]",
		Short: "Upload a local file (- for standard input); large files go in resumable parts",
		Long: `Upload LOCAL to REMOTE_PATH (default: the root folder, same name). A REMOTE_PATH that is a
folder, or ends with /, receives the file under its local name. Uploading to an existing file
adds a version. Files larger than --multipart-threshold are sent in parts; if such an upload
is interrupted, running the same command again sends only the missing parts.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote := ""
			if len(args) == 2 {
				remote = args[1]
			}
			return runPut(cmd.Context(), o, args[0], remote, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	})
	cmd.Flags().Var(&o.threshold, "multipart-threshold", "upload files larger than this in resumable parts (e.g. 64MiB)")
	addProgressFlag(cmd.Flags(), &o.progress)
	return cmd
}

func runPut(ctx context.Context, o putOptions, local, remote string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := o.open()
	if err != nil {
		return err
	}
	if local == "-" {
		if remote == "" || strings.HasSuffix(remote, "/") {
			return usageError{errors.New("put - needs a REMOTE_PATH that names the file")}
		}
		parent, name, rpath, err := destination(ctx, s.c, remote, "")
		if err != nil {
			return err
		}
		bar := newProgress(o.progress, stderr, -1, name)
		e, err := s.c.Upload(ctx, parent, name, stdin, client.UploadOptions{Size: -1, Progress: bar.set})
		bar.done(err)
		if err != nil {
			return fail(rpath, err)
		}
		fmt.Fprintf(stdout, "put %s (%d bytes, version %d)\n", rpath, e.Size, e.Version)
		return nil
	}
	f, err := os.Open(local)
	if err != nil {
		return fail("", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("", err)
	}
	if !fi.Mode().IsRegular() {
		return fail(local, dfms.Errorf("", dfms.IsDir, "not a regular file"))
	}
	parent, name, rpath, err := destination(ctx, s.c, remote, filepath.Base(local))
	if err != nil {
		return err
	}
	bar := newProgress(o.progress, stderr, fi.Size(), name)
	var e client.Entry
	if fi.Size() > int64(o.threshold) {
		e, err = putMultipart(ctx, s, f, fi, local, rpath, parent, name, bar, stderr)
	} else {
		e, err = s.c.Upload(ctx, parent, name, f, client.UploadOptions{Size: fi.Size(), Progress: bar.set})
	}
	bar.done(err)
	if err != nil {
		return fail(rpath, err)
	}
	fmt.Fprintf(stdout, "put %s (%d bytes, version %d, sha256 %s)\n", rpath, e.Size, e.Version, e.Checksum)
	return nil
}

// uploadState is what a multipart upload leaves behind for a resume.
type uploadState struct {
	UploadID string    `json:"upload_id"`
	Server   string    `json:"server"`
	Local    string    `json:"local"`
	Remote   string    `json:"remote"`
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	Started  time.Time `json:"started"`
}

// stateMaxAge bounds how long upload states are kept (the server forgets
// uploads after a day by default).
const stateMaxAge = 7 * 24 * time.Hour

// uploadStatePath names the state of an upload of one version of a local
// file (its path, size and mtime) to one remote path of one server.
func uploadStatePath(server, local, remote string, fi fs.FileInfo) (string, error) {
	dir, err := xdgDir("XDG_CACHE_HOME", ".cache")
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(local)
	if err != nil {
		return "", err
	}
	key := strings.Join([]string{server, abs, strconv.FormatInt(fi.Size(), 10),
		strconv.FormatInt(fi.ModTime().UnixNano(), 10), remote}, "\x00")
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(dir, "uploads", hex.EncodeToString(sum[:16])+".json"), nil
}

func putMultipart(ctx context.Context, s *session, f *os.File, fi fs.FileInfo, local, rpath string, parent dfms.EntryID,
	name string, bar *progress, stderr io.Writer) (client.Entry, error) {
	statePath, err := uploadStatePath(s.server, local, rpath, fi)
	if err != nil {
		return client.Entry{}, err
	}
	pruneStates(filepath.Dir(statePath))
	var st uploadState
	if b, err := os.ReadFile(statePath); err == nil && json.Unmarshal(b, &st) == nil && st.UploadID != "" {
		fmt.Fprintf(stderr, "dfms: resuming the interrupted upload of %s\n", local)
	}
	abs, _ := filepath.Abs(local)
	e, err := s.c.UploadMultipart(ctx, parent, name, f, fi.Size(), client.MultipartOptions{
		UploadID: st.UploadID,
		Progress: bar.set,
		Started: func(id string) error {
			if id == st.UploadID {
				return nil
			}
			b, _ := json.MarshalIndent(uploadState{UploadID: id, Server: s.server, Local: abs, Remote: rpath,
				Size: fi.Size(), ModTime: fi.ModTime(), Started: time.Now()}, "", "  ")
			return writeFileAtomic(statePath, append(b, '\n'))
		},
	})
	switch {
	case err == nil || dfms.Is(err, dfms.Corrupt):
		// Done, or done wrong: a resume would not help either way.
		os.Remove(statePath)
	case fileExists(statePath):
		err = resumable(err)
	}
	return e, err
}

// pruneStates removes upload states too old to resume.
func pruneStates(dir string) {
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".json") && time.Since(fi.ModTime()) > stateMaxAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
