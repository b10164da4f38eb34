package main

// The client commands (login, logout, ls, put, get, rm, mv, mkdir,
// versions, restore and search, each in its cmd_<name>.go) talk to a
// server's REST API through package client. This file holds what they
// share: the --server flag and the session it opens, the messages of
// their errors, and their output (tables, sizes, progress bars). The
// stored login is in credentials.go; the state of interrupted multipart
// uploads lives in $XDG_CACHE_HOME/dfms/uploads (cmd_put.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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

// ---- options and session ----

// clientOptions are the flags every client command has.
type clientOptions struct {
	server string
}

func (o *clientOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.server, "server", "", "server URL (env DFMS_SERVER; default: the server of the last login, else "+defaultServer+")")
}

// command makes cmd a client command: it gets the client flags, and a
// wrong number of arguments (cmd.Args) is a usage error.
func (o *clientOptions) command(cmd *cobra.Command) *cobra.Command {
	cmd.Args = usageArgs(cmd.Args)
	o.addFlags(cmd.Flags())
	return cmd
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

// client is a client, with opts, of the server serverURL picks; a bad
// URL is a usage error.
func (o *clientOptions) client(stored credentials, haveStored bool, opts ...client.Option) (*client.Client, error) {
	c, err := client.New(o.serverURL(stored, haveStored), opts...)
	if err != nil {
		return nil, usageError{fmt.Errorf("--server: %s", describe(err))}
	}
	return c, nil
}

// dial reads the stored login (ok is false if there is none) and makes a
// client, without tokens, of the chosen server.
func (o *clientOptions) dial() (c *client.Client, stored credentials, ok bool, err error) {
	if stored, ok, err = loadCredentials(); err != nil {
		return nil, stored, ok, err
	}
	c, err = o.client(stored, ok)
	return c, stored, ok, err
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
	c, stored, ok, err := o.dial()
	if err != nil {
		return nil, err
	}
	server := c.BaseURL()
	if !ok || !sameServer(stored.Server, server) || stored.RefreshToken == "" {
		return nil, &cliError{msg: fmt.Sprintf("not logged in to %s: run dfms login --server %s", server, server),
			err: dfms.Errorf("", dfms.Unauthenticated, "not logged in")}
	}
	c, err = client.New(server, append([]client.Option{
		client.WithTokens(client.Tokens{Access: stored.AccessToken, Refresh: stored.RefreshToken}),
		client.WithUserAgent("dfms-cli"),
		saveTokens(stored)}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &session{c: c, server: server}, nil
}

// resolve opens the session and finds the entry at the remote path p
// (clean); its errors name p.
func (o *clientOptions) resolve(ctx context.Context, p string) (*session, client.Entry, error) {
	s, err := o.open()
	if err != nil {
		return nil, client.Entry{}, err
	}
	e, err := s.c.Resolve(ctx, p)
	if err != nil {
		return nil, client.Entry{}, fail(p, err)
	}
	return s, e, nil
}

// resolveNotRoot is resolve for the path arg, cleaned (returned as p),
// that must not be the root folder: rm and mv say it cannot be verb.
func (o *clientOptions) resolveNotRoot(ctx context.Context, arg, verb string) (s *session, p string, e client.Entry, err error) {
	p = cleanRemote(arg)
	if p == "/" {
		return nil, p, e, usageError{errors.New("the root folder cannot be " + verb)}
	}
	s, e, err = o.resolve(ctx, p)
	return s, p, e, err
}

// resolveFile is resolve for the path arg, cleaned (returned as p), that
// must name a file: get, versions and restore say isDir of a folder.
func (o *clientOptions) resolveFile(ctx context.Context, arg, isDir string) (s *session, p string, e client.Entry, err error) {
	p = cleanRemote(arg)
	s, e, err = o.resolve(ctx, p)
	if err == nil && e.IsDir() {
		return nil, p, client.Entry{}, fail(p, dfms.Errorf("", dfms.IsDir, isDir))
	}
	return s, p, e, err
}

func sameServer(a, b string) bool {
	ca, err := client.New(a)
	return err == nil && ca.BaseURL() == b
}

// destination finds where an upload of a file called localName to remote
// goes (put and mv use it): the parent folder, the name, and the full
// remote path. A remote that is a folder, or ends with /, receives
// localName; one that is a file is that file (an upload adds a version; a
// move into it fails on the server).
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

// cleanRemote is the absolute, clean form of a remote path.
func cleanRemote(p string) string { return path.Clean("/" + p) }

// ---- errors ----

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

// resumable is err, of a transfer that left its state behind, with the
// advice to resume it.
func resumable(err error) error {
	return &cliError{msg: describe(err) + " (run the same command again to resume)", err: err}
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

// ---- output ----

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addLongFlag adds -l/--long, which sets long: printEntries shows the
// details.
func addLongFlag(fs *pflag.FlagSet, long *bool) {
	fs.BoolVarP(long, "long", "l", false, "details: id, exact size, mode, MIME type and SHA-256")
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

// progress draws a bar on stderr, or nothing.
type progress struct{ bar *progressbar.ProgressBar }

// addProgressFlag adds --progress, which sets force.
func addProgressFlag(fs *pflag.FlagSet, force *bool) {
	fs.BoolVar(force, "progress", false, "show a progress bar even when standard error is not a terminal")
}

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
