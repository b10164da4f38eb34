package main

// The client commands: login, logout, ls, put, get, rm, mv, mkdir,
// versions, restore and search talk to a server's REST API through
// package client. Credentials live in
// $XDG_CONFIG_HOME/dfms/credentials.json (mode 0600); the state of
// interrupted multipart uploads in $XDG_CACHE_HOME/dfms/uploads.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

// defaultServer is used when neither --server, DFMS_SERVER nor a stored
// login names one.
const defaultServer = "http://127.0.0.1:8080"

func newClientCmds() []*cobra.Command {
	return []*cobra.Command{newLoginCmd(), newLogoutCmd(), newLsCmd(), newPutCmd(), newGetCmd(), newRmCmd(),
		newMvCmd(), newMkdirCmd(), newVersionsCmd(), newRestoreCmd(), newSearchCmd()}
}

// ---- shared options, credentials and errors ----

// clientOptions are the flags every client command has.
type clientOptions struct {
	server string
}

func (o *clientOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.server, "server", "", "server URL (env DFMS_SERVER; default: the server of the last login, else "+defaultServer+")")
}

// credentials is the stored login, written by `dfms login`.
type credentials struct {
	Server       string `json:"server"`
	Email        string `json:"email,omitempty"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// xdgDir returns $<env>/dfms, or ~/<fallback>/dfms.
func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return filepath.Join(d, "dfms"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usageError{fmt.Errorf("set %s or HOME: %w", env, err)}
	}
	return filepath.Join(home, fallback, "dfms"), nil
}

func credentialsPath() (string, error) {
	dir, err := xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "credentials.json"), nil
}

// loadCredentials reads the stored login; ok is false if there is none.
func loadCredentials() (c credentials, ok bool, err error) {
	p, err := credentialsPath()
	if err != nil {
		return c, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w (log in again)", p, err)
	}
	return c, true, nil
}

func saveCredentials(c credentials) error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, append(b, '\n'))
}

// writeFileAtomic replaces path with data (mode 0600), creating its
// directory with mode 0700: readers see the old or the new file, whole.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Ours (…/dfms): tokens must not be listable by others.
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// serverURL picks the server: --server, DFMS_SERVER, the stored login's,
// the default.
func (o *clientOptions) serverURL(stored credentials, haveStored bool) string {
	switch {
	case o.server != "":
		return o.server
	case os.Getenv("DFMS_SERVER") != "":
		return os.Getenv("DFMS_SERVER")
	case haveStored && stored.Server != "":
		return stored.Server
	}
	return defaultServer
}

// session is a client of the chosen server with the stored tokens, which
// refreshes save back.
type session struct {
	c      *client.Client
	server string
}

// open builds the session, with the client options extra. Without a
// stored login for this server it fails with kind Unauthenticated.
func (o *clientOptions) open(extra ...client.Option) (*session, error) {
	stored, ok, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	raw := o.serverURL(stored, ok)
	c, err := client.New(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("--server: %s", describe(err))}
	}
	server := c.BaseURL()
	if !ok || !sameServer(stored.Server, server) || stored.RefreshToken == "" {
		return nil, &cliError{msg: fmt.Sprintf("not logged in to %s: run dfms login --server %s", server, server),
			err: dfms.Errorf("", dfms.Unauthenticated, "not logged in")}
	}
	creds := stored
	c, err = client.New(server, append([]client.Option{
		client.WithTokens(client.Tokens{Access: stored.AccessToken, Refresh: stored.RefreshToken}),
		client.WithUserAgent("dfms-cli"),
		client.WithTokenSaver(func(t client.Tokens) error {
			creds.AccessToken, creds.RefreshToken = t.Access, t.Refresh
			return saveCredentials(creds)
		})}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &session{c: c, server: server}, nil
}

func sameServer(a, b string) bool {
	ca, err := client.New(a)
	return err == nil && ca.BaseURL() == b
}

// cliError is an error with a message for people; Unwrap keeps its kind
// for the exit code.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// fail prefixes err's message with a subject (a path, usually).
func fail(subject string, err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	msg := describe(err)
	if subject != "" && !strings.HasPrefix(msg, subject+":") {
		msg = subject + ": " + msg
	}
	if dfms.Is(err, dfms.Unauthenticated) {
		msg += " (run dfms login)"
	}
	return &cliError{msg: msg, err: err}
}

// describe is err's message without the chain of operation names.
func describe(err error) string {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.msg
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		// The server says "<kind>: <detail>"; a detail that names the
		// kind itself ("already exists: \"a\" already exists") is enough.
		k := dfms.KindOf(err).String()
		if rest, ok := strings.CutPrefix(ae.Message, k+": "); ok && strings.Contains(rest, k) {
			return rest
		}
		return ae.Error()
	}
	var de *dfms.Error
	for errors.As(err, &de) && de.Err != nil {
		var inner *dfms.Error
		if !errors.As(de.Err, &inner) {
			if de.Kind == dfms.Unavailable {
				return "server unavailable: " + de.Err.Error()
			}
			return de.Err.Error()
		}
		err = de.Err
	}
	if de != nil {
		return de.Kind.String()
	}
	return err.Error()
}

// usageArgs turns argument-count errors into usage errors (exit code 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{fmt.Errorf("%s: %w (usage: %s)", cmd.Name(), err, cmd.UseLine())}
		}
		return nil
	}
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// cleanRemote is the absolute, clean form of a remote path.
func cleanRemote(p string) string { return path.Clean("/" + p) }

// ---- login, logout ----

func newLoginCmd() *cobra.Command {
	var o clientOptions
	var email string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "login [--email EMAIL] [--password-stdin]",
		Short: "Log in to a server and store the tokens in $XDG_CONFIG_HOME/dfms/credentials.json",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLogin(cmd.Context(), o, email, pwStdin, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&email, "email", "", "account email (prompted for on a terminal)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func runLogin(ctx context.Context, o clientOptions, email string, pwStdin bool, stdin io.Reader, stdout, stderr io.Writer) error {
	stored, ok, err := loadCredentials()
	if err != nil && o.server == "" && os.Getenv("DFMS_SERVER") == "" {
		return err // a broken file only matters if it names the server
	}
	c, err := client.New(o.serverURL(stored, ok), client.WithUserAgent("dfms-cli"))
	if err != nil {
		return usageError{fmt.Errorf("--server: %s", describe(err))}
	}
	tty := isTerminal(stdin)
	in := bufio.NewReader(stdin)
	if email == "" {
		if !tty {
			return usageError{errors.New("--email is required when standard input is not a terminal")}
		}
		fmt.Fprint(stderr, "Email: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return usageError{errors.New("no email given")}
		}
		email = strings.TrimSpace(line)
	}
	var password string
	if pwStdin || !tty {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(stdin.(*os.File).Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		password = string(b)
	}
	if email == "" || password == "" {
		return usageError{errors.New("an email and a password are required")}
	}
	creds := credentials{Server: c.BaseURL(), Email: email}
	c2, _ := client.New(c.BaseURL(), client.WithUserAgent("dfms-cli"), client.WithTokenSaver(func(t client.Tokens) error {
		creds.AccessToken, creds.RefreshToken = t.Access, t.Refresh
		return saveCredentials(creds)
	}))
	u, err := c2.Login(ctx, email, password)
	if err != nil {
		return &cliError{msg: "login to " + c.BaseURL() + ": " + describe(err), err: err}
	}
	p, _ := credentialsPath()
	fmt.Fprintf(stdout, "logged in to %s as %s (credentials in %s)\n", c.BaseURL(), u.Email, p)
	return nil
}

func newLogoutCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored login on the server and delete the stored credentials",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			stored, ok, err := loadCredentials()
			if err != nil {
				return err
			}
			c, err := client.New(o.serverURL(stored, ok))
			if err != nil {
				return usageError{fmt.Errorf("--server: %s", describe(err))}
			}
			if !ok || !sameServer(stored.Server, c.BaseURL()) {
				fmt.Fprintf(cmd.OutOrStdout(), "not logged in to %s\n", c.BaseURL())
				return nil
			}
			if s, err := o.open(); err == nil {
				if err := s.c.Logout(cmd.Context()); err != nil {
					// The local copy goes anyway; its tokens expire.
					fmt.Fprintf(cmd.ErrOrStderr(), "dfms: warning: could not revoke the login on %s: %s\n", s.server, describe(err))
				}
			}
			p, _ := credentialsPath()
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", stored.Server)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// ---- ls ----

func newLsCmd() *cobra.Command {
	var o clientOptions
	var long, asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [PATH]",
		Short: "List a remote folder (or show one file)",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 1 {
				p = args[0]
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p = cleanRemote(p)
			e, err := s.c.Resolve(ctx, p)
			if err != nil {
				return fail(p, err)
			}
			es := []client.Entry{e}
			if e.IsDir() {
				if es, err = s.c.List(ctx, e.ID); err != nil {
					return fail(p, err)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), es)
			}
			printEntries(cmd.OutOrStdout(), es, long, nil)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&long, "long", "l", false, "details: id, exact size, mode, MIME type and SHA-256")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printEntries prints a table of entries; names, if set, replaces each
// entry's name (search shows paths).
func printEntries(w io.Writer, es []client.Entry, long bool, names []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if long {
		fmt.Fprintln(tw, "TYPE\tID\tMODE\tSIZE\tMODIFIED\tVERSION\tMIME\tSHA256\tNAME")
	} else {
		fmt.Fprintln(tw, "TYPE\tSIZE\tMODIFIED\tVERSION\tNAME")
	}
	for i, e := range es {
		name := e.Name
		if names != nil {
			name = names[i]
		}
		if e.IsDir() && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		version, size := "-", "-"
		if !e.IsDir() {
			version = strconv.FormatInt(e.Version, 10)
			size = humanSize(e.Size)
		}
		if long {
			if !e.IsDir() {
				size = strconv.FormatInt(e.Size, 10)
			}
			fmt.Fprintf(tw, "%s\t%d\t%04o\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Type, e.ID, e.Mode, size,
				e.UpdatedAt.Local().Format(time.RFC3339), version, orDash(e.MIMEType), orDash(e.Checksum), name)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Type, size, e.UpdatedAt.Local().Format("2006-01-02 15:04"), version, name)
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanSize formats a byte count as ls -h does (binary units).
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	f := float64(n)
	for _, u := range []string{"K", "M", "G", "T", "P"} {
		f /= 1024
		if f < 1024 || u == "P" {
			if f < 10 {
				return strconv.FormatFloat(f, 'f', 1, 64) + u
			}
			return strconv.FormatFloat(f, 'f', 0, 64) + u
		}
	}
	return strconv.FormatInt(n, 10)
}

// byteSize is a flag of a size in bytes: 1048576, 512K, 64MiB, 1G
// (binary units).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffixes []string
		mult     int64
	}{
		{[]string{"tib", "tb", "t"}, 1 << 40}, {[]string{"gib", "gb", "g"}, 1 << 30},
		{[]string{"mib", "mb", "m"}, 1 << 20}, {[]string{"kib", "kb", "k"}, 1 << 10}, {[]string{"b"}, 1},
	} {
		found := false
		for _, suf := range u.suffixes {
			if strings.HasSuffix(t, suf) {
				t, mult, found = strings.TrimSpace(strings.TrimSuffix(t, suf)), u.mult, true
				break
			}
		}
		if found {
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a positive size such as 64MiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// ---- progress ----

// progress draws a bar on stderr, or nothing.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress shows a bar if forced or stderr is a terminal. size -1 is
// unknown (a spinner).
func newProgress(force bool, stderr io.Writer, size int64, desc string) *progress {
	if !force && !isTerminal(stderr) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)}
}

// set reports the bytes done; it may be called from any goroutine.
func (p *progress) set(n int64) {
	if p.bar != nil {
		p.bar.Set64(n)
	}
}

// done ends the bar (complete on success, as it is on failure).
func (p *progress) done(err error) {
	if p.bar == nil {
		return
	}
	if err == nil {
		p.bar.Finish()
	}
	if !p.bar.IsFinished() {
		p.bar.Exit()
	}
}

// ---- put ----

type putOptions struct {
	clientOptions
	threshold byteSize
	progress  bool
}

func newPutCmd() *cobra.Command {
	o := putOptions{threshold: 64 << 20}
	cmd := &cobra.Command{
		Use:   "put LOCAL [REMOTE_PATH]",
		Short: "Upload a local file (- for standard input); large files go in resumable parts",
		Long: `Upload LOCAL to REMOTE_PATH (default: the root folder, same name). A REMOTE_PATH that is a
folder, or ends with /, receives the file under its local name. Uploading to an existing file
adds a version. Files larger than --multipart-threshold are sent in parts; if such an upload
is interrupted, running the same command again sends only the missing parts.`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote := ""
			if len(args) == 2 {
				remote = args[1]
			}
			return runPut(cmd.Context(), o, args[0], remote, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().Var(&o.threshold, "multipart-threshold", "upload files larger than this in resumable parts (e.g. 64MiB)")
	cmd.Flags().BoolVar(&o.progress, "progress", false, "show a progress bar even when standard error is not a terminal")
	return cmd
}

// destination finds where an upload of a file called localName to remote
// goes (mv uses it too): the parent folder, the name, and the full remote
// path. A remote that is a folder, or ends with /, receives localName;
// one that is a file is that file (an upload adds a version; a move into
// it fails on the server).
func destination(ctx context.Context, c *client.Client, remote, localName string) (dfms.EntryID, string, string, error) {
	if remote == "" {
		remote = "/"
	}
	intoFolder := strings.HasSuffix(remote, "/")
	p := cleanRemote(remote)
	e, err := c.Resolve(ctx, p)
	switch {
	case err == nil && e.IsDir():
		return e.ID, localName, path.Join(p, localName), nil
	case err == nil && intoFolder:
		return 0, "", "", fail(p, dfms.Errorf("", dfms.NotDir, "not a folder"))
	case err == nil:
		return e.ParentID, e.Name, p, nil
	case dfms.Is(err, dfms.NotExist) && !intoFolder:
		parent, err := c.Resolve(ctx, path.Dir(p))
		if err == nil && !parent.IsDir() {
			err = dfms.Errorf("", dfms.NotDir, "not a folder")
		}
		return parent.ID, path.Base(p), p, fail(path.Dir(p), err)
	}
	return 0, "", "", fail(p, err)
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
		err = &cliError{msg: describe(err) + " (run the same command again to resume)", err: err}
	}
	return e, err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

// ---- get ----

func newGetCmd() *cobra.Command {
	var o clientOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "get REMOTE [LOCAL]",
		Short: "Download a file (LOCAL - is standard output); an interrupted download resumes",
		Long: `Download the current version of REMOTE to LOCAL (default: its name in the current
directory; into LOCAL if it is a directory). The bytes go to a partial file beside LOCAL,
which a later run resumes with a Range request; the SHA-256 is verified before LOCAL is
replaced.`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p := cleanRemote(args[0])
			e, err := s.c.Resolve(ctx, p)
			if err != nil {
				return fail(p, err)
			}
			if e.IsDir() {
				return fail(p, dfms.Errorf("", dfms.IsDir, "is a folder"))
			}
			local := e.Name
			if len(args) == 2 {
				local = args[1]
			}
			stderr := cmd.ErrOrStderr()
			if local == "-" {
				bar := newProgress(force, stderr, e.Size, e.Name)
				_, err := s.c.DownloadTo(ctx, e.ID, cmd.OutOrStdout(), bar.set)
				bar.done(err)
				return fail(p, err)
			}
			if fi, err := os.Stat(local); err == nil && fi.IsDir() {
				local = filepath.Join(local, e.Name)
			}
			bar := newProgress(force, stderr, e.Size, e.Name)
			got, err := s.c.DownloadFile(ctx, e.ID, local, func(done, _ int64) { bar.set(done) })
			bar.done(err)
			if err != nil {
				if len(e.Checksum) >= 16 && fileExists(local+"."+e.Checksum[:16]+client.PartialSuffix) {
					err = &cliError{msg: describe(err) + " (run the same command again to resume)", err: err}
				}
				return fail(p, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "got %s -> %s (%d bytes, version %d, sha256 verified)\n", p, local, got.Size, got.Version)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&force, "progress", false, "show a progress bar even when standard error is not a terminal")
	return cmd
}

// ---- rm, mv, mkdir ----

func newRmCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "rm PATH",
		Short: "Move a remote file or folder (with its contents) to the trash",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := cleanRemote(args[0])
			if p == "/" {
				return usageError{errors.New("the root folder cannot be removed")}
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			e, err := s.c.Resolve(ctx, p)
			if err != nil {
				return fail(p, err)
			}
			if err := s.c.Delete(ctx, e.ID); err != nil {
				return fail(p, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moved %s to the trash\n", p)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func newMvCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "mv SRC DST",
		Short: "Rename or move a remote file or folder (into DST if it is a folder)",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := cleanRemote(args[0])
			if src == "/" {
				return usageError{errors.New("the root folder cannot be moved")}
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			e, err := s.c.Resolve(ctx, src)
			if err != nil {
				return fail(src, err)
			}
			parent, name, to, err := destination(ctx, s.c, args[1], e.Name)
			if err != nil {
				return err
			}
			if _, err := s.c.Move(ctx, e.ID, parent, name); err != nil {
				return fail(src+" -> "+to, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moved %s -> %s\n", src, to)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func newMkdirCmd() *cobra.Command {
	var o clientOptions
	var parents bool
	cmd := &cobra.Command{
		Use:   "mkdir PATH",
		Short: "Create a remote folder",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := cleanRemote(args[0])
			if p == "/" {
				if parents {
					return nil
				}
				return fail(p, dfms.Errorf("", dfms.Exist, "already exists"))
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !parents {
				parent, err := s.c.Resolve(ctx, path.Dir(p))
				if err != nil {
					return fail(path.Dir(p), err)
				}
				if _, err := s.c.Mkdir(ctx, parent.ID, path.Base(p)); err != nil {
					return fail(p, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", p)
				return nil
			}
			dir, walked := client.Root, ""
			for _, name := range client.SplitPath(p) {
				walked += "/" + name
				e, err := s.c.Lookup(ctx, dir, name)
				if dfms.Is(err, dfms.NotExist) {
					if e, err = s.c.Mkdir(ctx, dir, name); err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", walked)
					}
				}
				if err == nil && !e.IsDir() {
					err = dfms.Errorf("", dfms.NotDir, "not a folder")
				}
				if err != nil {
					return fail(walked, err)
				}
				dir = e.ID
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "create missing parent folders; no error if the folder exists")
	return cmd
}

// ---- versions, restore ----

func newVersionsCmd() *cobra.Command {
	var o clientOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "versions PATH",
		Short: "List the versions of a remote file, newest first",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := cleanRemote(args[0])
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			e, err := s.c.Resolve(ctx, p)
			if err != nil {
				return fail(p, err)
			}
			if e.IsDir() {
				return fail(p, dfms.Errorf("", dfms.IsDir, "is a folder; folders have no versions"))
			}
			vs, err := s.c.Versions(ctx, e.ID)
			if err != nil {
				return fail(p, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSIZE\tCREATED\tSHA256\tCURRENT")
			for _, v := range vs {
				cur := ""
				if v.Current {
					cur = "*"
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", v.Version, v.Size, v.CreatedAt.Local().Format("2006-01-02 15:04:05"), v.Checksum, cur)
			}
			return tw.Flush()
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the versions as JSON")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var o clientOptions
	var version int64
	cmd := &cobra.Command{
		Use:   "restore PATH --version N",
		Short: "Make a copy of version N the current version of a remote file",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 1 {
				return usageError{errors.New("--version N (a version number from dfms versions) is required")}
			}
			p := cleanRemote(args[0])
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			e, err := s.c.Resolve(ctx, p)
			if err != nil {
				return fail(p, err)
			}
			if e.IsDir() {
				return fail(p, dfms.Errorf("", dfms.IsDir, "is a folder; folders have no versions"))
			}
			got, _, err := s.c.RestoreVersion(ctx, e.ID, version)
			if err != nil {
				return fail(fmt.Sprintf("%s version %d", p, version), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s version %d as version %d\n", p, version, got.Version)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().Int64Var(&version, "version", 0, "the version to restore")
	return cmd
}

// ---- search ----

func newSearchCmd() *cobra.Command {
	var o clientOptions
	var typ string
	var limit int
	var long, asJSON bool
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Find remote files and folders by name",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError{errors.New("--limit must not be negative")}
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			es, total, err := s.c.Search(ctx, args[0], client.SearchOptions{Type: typ, Limit: limit})
			if err != nil {
				return fail("search", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), es)
			}
			paths := make([]string, len(es))
			dirs := map[dfms.EntryID]string{}
			for i, e := range es {
				dir, err := folderPath(ctx, s.c, e.ParentID, dirs)
				if err != nil {
					return fail("search", err)
				}
				paths[i] = path.Join(dir, e.Name)
			}
			printEntries(cmd.OutOrStdout(), es, long, paths)
			if total > len(es) {
				fmt.Fprintf(cmd.ErrOrStderr(), "dfms: showing %d of %d matches (see --limit)\n", len(es), total)
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&typ, "type", "", "file, folder, symlink, or a MIME type or prefix such as image/")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many results (0: all)")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "details: id, exact size, mode, MIME type and SHA-256")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

// folderPath returns the path of a folder by walking up its parents,
// remembering what it learns in known.
func folderPath(ctx context.Context, c *client.Client, id dfms.EntryID, known map[dfms.EntryID]string) (string, error) {
	if p, ok := known[id]; ok {
		return p, nil
	}
	e, err := c.Stat(ctx, id)
	if err != nil {
		return "", err
	}
	p := "/"
	if e.ParentID != 0 {
		dir, err := folderPath(ctx, c, e.ParentID, known)
		if err != nil {
			return "", err
		}
		p = path.Join(dir, e.Name)
	}
	known[id] = p
	return p, nil
}
