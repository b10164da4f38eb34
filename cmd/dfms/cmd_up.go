package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server"
)

// upOptions are the flags of `dfms up`.
type upOptions struct {
	config      configOptions
	cacheDir    string
	debug       bool
	syncClose   bool
	allowOther  bool
	maxFileSize byteSize
}

func (o *upOptions) addFlags(fs *pflag.FlagSet) {
	o.config.addFlags(fs)
	fs.StringVar(&o.cacheDir, "cache-dir", "", "where writes are staged (default: the data directory's cache folder)")
	fs.BoolVar(&o.debug, "fuse-debug", false, "log every FUSE request")
	fs.BoolVar(&o.syncClose, "sync-close", false, syncCloseHelp)
	fs.BoolVar(&o.allowOther, "allow-other", false, allowOtherHelp)
	fs.Var(&o.maxFileSize, "max-file-size", maxFileSizeHelp)
}

const maxFileSizeHelp = "largest size a file may grow to in the mount (default 16TiB); past it truncate, fallocate and write fail with EFBIG"

const allowOtherHelp = "let other users of this machine in: the kernel checks each access against the files' mode bits and owners (default_permissions); without it only the mounting user (and root) may enter"

const syncCloseHelp = "commit a written file before close(2) returns (default: in the background, right after; fsync always waits)"

func newUpCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "Run the server and mount DIR in one process, for one local user, until interrupted",
		Long: `Run the DFMS server (configured as for "dfms server") and mount the files of one
user on DIR, in the foreground, until SIGINT or SIGTERM; then unmount and stop.

The user is DFMS_ADMIN_EMAIL (with DFMS_ADMIN_PASSWORD) if set; otherwise
local@localhost (an administrator of this single-user server), created on
first start with a random password that is kept
in DATA/local-credentials (mode 0600) for logging in to the REST API.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), o, args[0], os.Getenv, func(cfg server.Config) *slog.Logger { return newLogger(cmd, cfg) })
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// The local user of `dfms up` when no administrator is configured.
const (
	localEmail     = "local@localhost"
	credentialFile = "local-credentials"
)

// localCredentials returns the password of the local user of a data
// directory, creating it (and the file holding it) on first use.
func localCredentials(dataDir string) (email, password string, err error) {
	path := filepath.Join(dataDir, credentialFile)
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			switch {
			case !ok || strings.HasPrefix(k, "#"):
			case k == "email":
				email = v
			case k == "password":
				password = v
			}
		}
		if err := sc.Err(); err != nil {
			return "", "", err
		}
		if email == "" || password == "" {
			return "", "", usageError{fmt.Errorf("%s: want email= and password= lines", path)}
		}
		return email, password, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	password = base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", "", err
	}
	content := fmt.Sprintf("# dfms up: the local user of this data directory (REST API login)\nemail=%s\npassword=%s\n", localEmail, password)
	// O_EXCL: two first starts at once must not hand out two passwords.
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return localEmail, password, nil
}

// defaultCacheDir is $XDG_CACHE_HOME/dfms/mount, or ~/.cache/dfms/mount.
func defaultCacheDir(getenv func(string) string) (string, error) {
	base := getenv("XDG_CACHE_HOME")
	if base == "" {
		home := getenv("HOME")
		if home == "" {
			return "", usageError{errors.New("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir")}
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "dfms", "mount"), nil
}

// upCacheDir is the default write cache of `dfms up` on data directory
// data: its cache folder, so that two `dfms up` on two data directories
// have two. Releases before kept it per user, in defaultCacheDir: one that
// still holds staged data is used, so that the data is committed.
func upCacheDir(data string, getenv func(string) string) string {
	if old, err := defaultCacheDir(getenv); err == nil {
		if names, err := os.ReadDir(old); err == nil && len(names) > 0 {
			return old
		}
	}
	return filepath.Join(data, "cache")
}

// runUp runs the embedded server and the mount until ctx ends or the
// mount goes away (dfms umount), then unmounts and stops the server.
func runUp(ctx context.Context, o upOptions, dir string, getenv func(string) string, logger func(server.Config) *slog.Logger) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := o.config.load(getenv)
	if err != nil {
		return err
	}
	credentials := ""
	if cfg.Admin.Email == "" {
		if cfg.Admin.Email, cfg.Admin.Password, err = localCredentials(cfg.DataDir); err != nil {
			return fmt.Errorf("local user: %w", err)
		}
		if credentials, err = filepath.Abs(filepath.Join(cfg.DataDir, credentialFile)); err != nil {
			return err
		}
	}
	log := logger(cfg)
	cacheDir := o.cacheDir
	if cacheDir == "" {
		cacheDir = upCacheDir(cfg.DataDir, getenv)
		log.Debug("dfms up: write cache", "dir", cacheDir)
	}

	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	serving := false
	defer func() {
		if !serving {
			srv.Close()
		}
	}()
	u, err := srv.Files().Meta().GetUserByEmail(ctx, cfg.Admin.Email)
	if err != nil {
		return fmt.Errorf("user %s: %w", cfg.Admin.Email, err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer func() {
		if !serving {
			ln.Close()
		}
	}()
	fsys, err := vfs.New(ctx, local.New(srv.Files(), u.ID), vfs.Options{CacheDir: cacheDir, Log: log, WriteBack: !o.syncClose,
		MaxFileSize: int64(o.maxFileSize)})
	if err != nil {
		return err
	}
	mnt, err := fusefs.Mount(dir, fsys, fusefs.Options{Log: log, Debug: o.debug, AllowOther: o.allowOther})
	if err != nil {
		fsys.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("mount %s: %w", dir, err)
	}

	// The server outlives ctx: it stops only after the mount, which uses
	// its backends, is gone.
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	serving = true
	var serveErr error
	served := make(chan struct{})
	go func() { serveErr = srv.Serve(srvCtx, ln); close(served) }()
	log.Info("dfms up: mounted", "dir", dir, "user", cfg.Admin.Email, "credentials", credentials, "api", "http://"+ln.Addr().String())

	errs := holdMount(ctx, "dfms up", mnt, fsys, dir, log, served)
	stopServer()
	<-served
	if serveErr != nil {
		errs = append(errs, fmt.Errorf("server: %w", serveErr))
	}
	return errors.Join(errs...)
}

// holdMount keeps the mount of fsys on dir until ctx ends, it is
// unmounted from outside (dfms umount) or stop is closed (a nil stop never
// is), unmounting it in the first and last cases; then it closes fsys. It
// returns the errors met. prog starts its log messages.
func holdMount(ctx context.Context, prog string, mnt *fuse.Server, fsys *vfs.FS, dir string, log *slog.Logger, stop <-chan struct{}) []error {
	unmounted := make(chan struct{})
	go func() { mnt.Wait(); close(unmounted) }()
	var errs []error
	select {
	case <-ctx.Done():
		log.Info(prog+": unmounting", "dir", dir)
		if err := unmount(prog, mnt, dir, unmounted, log); err != nil {
			errs = append(errs, err)
		}
	case <-unmounted:
		log.Info(prog+": unmounted from outside", "dir", dir)
	case <-stop:
		if err := unmount(prog, mnt, dir, unmounted, log); err != nil {
			errs = append(errs, err)
		}
	}
	if err := fsys.Close(context.WithoutCancel(ctx)); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// unmount unmounts dir, detaching it lazily if it stays busy (a shell
// inside it), and waits a little for the FUSE server to finish.
func unmount(prog string, mnt *fuse.Server, dir string, unmounted <-chan struct{}, log *slog.Logger) error {
	err := mnt.Unmount()
	if err == nil {
		return nil
	}
	log.Warn(prog+": the mount is busy; detaching it", "dir", dir, "err", err)
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	select {
	case <-unmounted:
	case <-time.After(5 * time.Second):
		log.Warn(prog+": files are still open in the detached mount; stopping anyway", "dir", dir)
	}
	return nil
}
