package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/server/api/client"
)

// mountOptions are the flags of `dfms mount`.
type mountOptions struct {
	client      clientOptions
	cacheDir    string
	cacheSize   string
	allowOther  bool
	maxFileSize byteSize
	background  bool
	debug       bool
	syncClose   bool
	serverWait  time.Duration
}

func newMountCmd() *cobra.Command {
	var o mountOptions
	cmd := &cobra.Command{
		Use:   "mount DIR",
		Short: "Mount your files of a DFMS server on DIR (foreground until interrupted, or --background)",
		Long: `Mount the files of the logged-in user (dfms login) on DIR, over the REST API.

The server and the login come from "dfms login" (or --server / DFMS_SERVER),
or from DFMS_EMAIL and DFMS_PASSWORD, which log in without storing tokens.
Chunks read are kept in a local cache (--cache-size, least recently used
go first); writes are staged in the cache directory until close or fsync
commit them, and a stage left by a crash is committed at the next mount.
Every directory has a hidden .versions directory with each file's history.
While the server cannot be reached (a restart), operations wait for it up
to --server-wait, and files cached here are still read.

In the foreground it runs until SIGINT or SIGTERM, then unmounts; with
--background it returns once the mount is ready. "dfms umount DIR" unmounts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.background {
				return runBackground(cmd, args[0])
			}
			return runMount(cmd.Context(), o, args[0], func(cfg server.Config) *slog.Logger { return newLogger(cmd, cfg) })
		},
	}
	o.client.addFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&o.cacheDir, "cache-dir", "", "chunk cache and write stages (default $XDG_CACHE_HOME/dfms/mounts/<server and user>)")
	fs.StringVar(&o.cacheSize, "cache-size", "10GiB", "bound of the on-disk chunk cache")
	fs.BoolVar(&o.allowOther, "allow-other", false, allowOtherHelp)
	fs.Var(&o.maxFileSize, "max-file-size", maxFileSizeHelp)
	fs.BoolVarP(&o.background, "background", "d", false, "return once mounted; the mount runs on in the background")
	fs.BoolVar(&o.debug, "fuse-debug", false, "log every FUSE request")
	fs.BoolVar(&o.syncClose, "sync-close", false, syncCloseHelp)
	fs.DurationVar(&o.serverWait, "server-wait", 60*time.Second,
		"how long an operation waits for a server that cannot be reached (a restart, a network blip) before it fails with EIO; 0: at once")
	return cmd
}

// mountClient returns a client of the chosen server: with DFMS_EMAIL and
// DFMS_PASSWORD a fresh login (tokens kept in memory), otherwise the
// stored login. Its requests wait up to --server-wait for a server that
// cannot be reached, and say so in log.
func (o *mountOptions) mountClient(ctx context.Context, log *slog.Logger) (*client.Client, string, error) {
	wait := []client.Option{client.WithServerWait(o.serverWait), client.WithLogger(log)}
	if email := os.Getenv("DFMS_EMAIL"); email != "" {
		stored, ok, err := loadCredentials()
		if err != nil {
			return nil, "", err
		}
		c, err := client.New(o.client.serverURL(stored, ok), append(wait, client.WithUserAgent("dfms-mount"))...)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("--server: %s", describe(err))}
		}
		if _, err := c.Login(ctx, email, os.Getenv("DFMS_PASSWORD")); err != nil {
			return nil, "", err
		}
		return c, email, nil
	}
	s, err := o.client.open(wait...)
	if err != nil {
		return nil, "", err
	}
	stored, _, _ := loadCredentials()
	return s.c, stored.Email, nil
}

func runMount(ctx context.Context, o mountOptions, dir string, logger func(server.Config) *slog.Logger) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cacheSize, err := humanize.ParseBytes(o.cacheSize)
	if err != nil {
		return usageError{fmt.Errorf("--cache-size: %w", err)}
	}
	var cfg server.Config
	cfg.Log.Level = "info"
	log := logger(cfg)
	if o.serverWait < 0 {
		return usageError{fmt.Errorf("--server-wait: %v is negative", o.serverWait)}
	}
	c, who, err := o.mountClient(ctx, log)
	if err != nil {
		return err
	}
	cacheDir := o.cacheDir
	if cacheDir == "" {
		base, err := defaultCacheDir(os.Getenv)
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(c.BaseURL() + "\x00" + who))
		cacheDir = filepath.Join(filepath.Dir(base), "mounts", hex.EncodeToString(sum[:8]))
	}
	fsys, err := vfs.New(ctx, remote.New(c), vfs.Options{CacheDir: cacheDir, CacheSize: int64(cacheSize), Log: log, WriteBack: !o.syncClose,
		MaxFileSize: int64(o.maxFileSize)})
	if err != nil {
		return err
	}
	mnt, err := fusefs.Mount(dir, fsys, fusefs.Options{Log: log, Debug: o.debug, AllowOther: o.allowOther,
		FsName: "dfms:" + c.BaseURL()})
	if err != nil {
		fsys.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	log.Info("dfms mount: mounted", "dir", dir, "server", c.BaseURL(), "cache", cacheDir)
	return errors.Join(holdMount(ctx, "dfms mount", mnt, fsys, dir, log, nil)...)
}

// runBackground starts this command again without --background, detached
// from the terminal, and returns once dir is mounted (or the child failed).
func runBackground(cmd *cobra.Command, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := slices.DeleteFunc(slices.Clone(os.Args[1:]), func(a string) bool {
		return a == "--background" || a == "-d" || a == "--background=true"
	})
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("dfms-mount-%d.log", os.Getpid()))
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	child := exec.Command(self, args...)
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if isFuseMount(dir) {
			fmt.Fprintf(cmd.OutOrStdout(), "mounted %s (pid %d, log %s)\n", dir, child.Process.Pid, logPath)
			return nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the mount exited (%v): %s", err, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	child.Process.Signal(syscall.SIGTERM)
	return fmt.Errorf("%s was not mounted within 30 s (log %s)", dir, logPath)
}

// isFuseMount reports whether dir is the root of a FUSE mount.
func isFuseMount(dir string) bool {
	var st syscall.Statfs_t
	const fuseMagic = 0x65735546
	return syscall.Statfs(dir, &st) == nil && st.Type == fuseMagic
}
