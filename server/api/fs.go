package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// The /fs endpoints are the POSIX-shaped surface the mount (dfms mount)
// uses besides the chunk endpoints: entries by id with their owner ids,
// mode and nanosecond times, lookup by name, create with a kind, unlink
// and rmdir semantics, and rename with replace. Names in paths are
// percent-encoded.

// fsView is how the /fs endpoints show an entry.
func fsView(e dfms.Entry) apiclient.FSEntry {
	return apiclient.FSEntry{ID: e.ID, Parent: e.Parent, Name: e.Name, Kind: e.Kind.String(), Mode: e.Mode & 0o7777, UID: e.UID, GID: e.GID,
		Size: e.Size, DataSize: &e.DataSize, MTime: e.MTime.UTC(), CTime: e.CTime.UTC(), ATime: e.ATime.UTC(), Target: e.Target, Rdev: e.Rdev, Nlink: e.Nlink,
		Version: e.Version, VersionID: e.VersionID, Live: e.Live()}
}

func (a *API) fsRoot(c *gin.Context) {
	a.fsEntryOut(c, user(c).Root)
}

func (a *API) fsGet(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	a.fsEntryOut(c, id)
}

// fsEntryOut answers entry id, live or in the trash.
func (a *API) fsEntryOut(c *gin.Context, id dfms.EntryID) {
	e, ok := a.owned(c, id)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{"entry": fsView(e)})
}

// maxChildren bounds a page of GET /fs/entries/{id}/children.
const maxChildren = 1000

// fsChildren lists a directory by name, a page (?limit=, at most
// maxChildren) at a time: "more" says whether entries remain after the
// last one, whose name continues the walk (?after=).
func (a *API) fsChildren(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	limit := maxChildren
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			a.bad(c, "limit must be a positive number")
			return
		}
		limit = min(n, maxChildren)
	}
	opts := meta.ListOptions{ByName: true, Limit: limit + 1}
	if after, ok := c.GetQuery("after"); ok {
		if !a.validName(c, after) {
			return
		}
		opts.After = after
	}
	es, err := a.Files.List(c.Request.Context(), user(c).ID, id, opts)
	if err != nil {
		a.fail(c, err)
		return
	}
	more := len(es) > limit
	es = es[:min(len(es), limit)]
	out := make([]apiclient.FSEntry, len(es))
	for i, e := range es {
		out[i] = fsView(e)
	}
	c.JSON(http.StatusOK, gin.H{"items": out, "more": more})
}

// childParams parses the :id of a folder and the :name of an entry in
// it, or answers 400.
func (a *API) childParams(c *gin.Context) (dfms.EntryID, string, bool) {
	id, ok := a.entryParam(c, "id")
	name := c.Param("name")
	return id, name, ok && a.validName(c, name)
}

func (a *API) fsLookup(c *gin.Context) {
	id, name, ok := a.childParams(c)
	if !ok {
		return
	}
	e, err := a.Files.Lookup(c.Request.Context(), user(c).ID, id, name)
	a.reply(c, http.StatusOK, gin.H{"entry": fsView(e)}, err)
}

func (a *API) fsCreate(c *gin.Context) {
	var b struct {
		Name   string `json:"name"`
		Kind   string `json:"kind"`
		Mode   uint32 `json:"mode"`
		UID    uint32 `json:"uid"`
		GID    uint32 `json:"gid"`
		Target string `json:"target"`
		Rdev   uint32 `json:"rdev"`
	}
	parent, ok := a.entryBody(c, &b, false)
	if !ok || !a.validName(c, b.Name) {
		return
	}
	kind, ok := dfms.ParseEntryKind(b.Kind)
	if !ok {
		a.bad(c, "kind must be file, dir, symlink, fifo, socket, chardev or blockdev")
		return
	}
	e := dfms.Entry{Owner: user(c).ID, Parent: parent, Name: b.Name, Kind: kind, Mode: b.Mode & 0o7777, UID: b.UID, GID: b.GID, Rdev: b.Rdev}
	switch {
	case kind == dfms.KindFile:
		e.MIME = mime.TypeByExtension(path.Ext(b.Name))
	case kind == dfms.KindSymlink:
		if b.Target == "" || len(b.Target) > 4096 {
			a.bad(c, "a symlink needs a target of 1..4096 bytes")
			return
		}
		e.Mode, e.Target = 0o777, b.Target
	}
	if kind != dfms.KindSymlink && b.Target != "" {
		a.bad(c, "only a symlink has a target")
		return
	}
	if !kind.Device() && b.Rdev != 0 {
		a.bad(c, "only a device (chardev, blockdev) has a device number")
		return
	}
	out, err := a.tree.CreateEntry(c.Request.Context(), e)
	a.reply(c, http.StatusCreated, gin.H{"entry": fsView(out)}, err)
}

func (a *API) fsSetAttr(c *gin.Context) {
	var b struct {
		Mode  *uint32    `json:"mode"`
		UID   *uint32    `json:"uid"`
		GID   *uint32    `json:"gid"`
		MTime *time.Time `json:"mtime"`
		ATime *time.Time `json:"atime"`
		// Accessed: atime is a read's (relatime), not a change.
		Accessed bool `json:"accessed"`
	}
	id, ok := a.entryBody(c, &b, false)
	if !ok {
		return
	}
	if b.Mode != nil && *b.Mode > 0o7777 {
		a.bad(c, "mode has only permission, set-id and sticky bits (at most 07777)")
		return
	}
	if b.MTime != nil && !a.validTime(c, "mtime", *b.MTime) || b.ATime != nil && !a.validTime(c, "atime", *b.ATime) {
		return
	}
	e, err := a.Files.SetAttr(c.Request.Context(), user(c).ID, id, dfms.SetAttr{Mode: b.Mode, UID: b.UID, GID: b.GID, MTime: b.MTime, ATime: b.ATime,
		Accessed: b.Accessed})
	a.reply(c, http.StatusOK, gin.H{"entry": fsView(e)}, err)
}

// fsRemove is unlink(2), or rmdir(2) with ?dir=true.
func (a *API) fsRemove(c *gin.Context) {
	parent, name, ok := a.childParams(c)
	if !ok {
		return
	}
	var err error
	switch c.Query("dir") {
	case "true":
		err = a.Files.RmdirName(c.Request.Context(), user(c).ID, parent, name)
	case "", "false":
		err = a.Files.UnlinkName(c.Request.Context(), user(c).ID, parent, name)
	default:
		a.bad(c, "dir must be true or false")
		return
	}
	a.reply(c, http.StatusNoContent, nil, err)
}

func (a *API) fsRename(c *gin.Context) {
	var b struct {
		Parent    dfms.EntryID `json:"parent_id"`
		Name      string       `json:"name"`
		NewParent dfms.EntryID `json:"new_parent_id"`
		NewName   string       `json:"new_name"`
		Replace   bool         `json:"replace"`
	}
	if !a.bindJSON(c, &b, false) || !a.validName(c, b.Name) || !a.validName(c, b.NewName) {
		return
	}
	if b.Parent == 0 || b.NewParent == 0 {
		a.bad(c, "parent_id and new_parent_id are required")
		return
	}
	e, err := a.Files.RenameName(c.Request.Context(), user(c).ID, b.Parent, b.Name, b.NewParent, b.NewName, b.Replace)
	a.reply(c, http.StatusOK, gin.H{"entry": fsView(e)}, err)
}

// fsLink gives entry id another name, as link(2).
func (a *API) fsLink(c *gin.Context) {
	var b struct {
		Parent dfms.EntryID `json:"parent_id"`
		Name   string       `json:"name"`
	}
	id, ok := a.entryBody(c, &b, false)
	if !ok || !a.validName(c, b.Name) {
		return
	}
	if b.Parent == 0 {
		a.bad(c, "parent_id is required")
		return
	}
	e, err := a.Files.Link(c.Request.Context(), user(c).ID, id, b.Parent, b.Name)
	a.reply(c, http.StatusCreated, gin.H{"entry": fsView(e)}, err)
}

// Extended attributes, as opaque names and values (base64 in JSON).

// xattrParams parses the entry id and attribute name of the path.
func (a *API) xattrParams(c *gin.Context) (dfms.EntryID, string, bool) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return 0, "", false
	}
	name := c.Param("name")
	if name == "" || len(name) > dfms.MaxXattrName {
		a.bad(c, "attribute names have 1..%d bytes", dfms.MaxXattrName)
		return 0, "", false
	}
	return id, name, true
}

func (a *API) fsListXattrs(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	names, err := a.xattrs.ListXattrs(c.Request.Context(), user(c).ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"names": names})
}

func (a *API) fsGetXattr(c *gin.Context) {
	id, name, ok := a.xattrParams(c)
	if !ok {
		return
	}
	v, found, err := a.xattrs.GetXattr(c.Request.Context(), user(c).ID, id, name)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !found {
		a.fail(c, dfms.E("", dfms.NotExist, fmt.Errorf("no attribute %q", name)))
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": name, "value": v})
}

func (a *API) fsSetXattr(c *gin.Context) {
	id, name, ok := a.xattrParams(c)
	if !ok {
		return
	}
	var b struct {
		Value []byte `json:"value"`
		Mode  string `json:"mode"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	var mode dfms.XattrMode
	switch b.Mode {
	case "", "any":
		mode = dfms.XattrAny
	case "create":
		mode = dfms.XattrCreate
	case "replace":
		mode = dfms.XattrReplace
	default:
		a.bad(c, "mode must be any, create or replace")
		return
	}
	err := a.xattrs.SetXattr(c.Request.Context(), user(c).ID, id, name, b.Value, mode)
	a.reply(c, http.StatusNoContent, nil, err)
}

func (a *API) fsRemoveXattr(c *gin.Context) {
	id, name, ok := a.xattrParams(c)
	if !ok {
		return
	}
	err := a.xattrs.RemoveXattr(c.Request.Context(), user(c).ID, id, name)
	a.reply(c, http.StatusNoContent, nil, err)
}

// batchSize answers 400 unless the list of a batch request (named field)
// holds n items, 1 to most of them (what they are).
func (a *API) batchSize(c *gin.Context, n, most int, field, what string) bool {
	if n == 0 || n > most {
		a.bad(c, "%s must hold 1 to %d %s", field, most, what)
		return false
	}
	return true
}

// maxBatchCommits bounds the commits of one POST /fs/commits.
const maxBatchCommits = 256

// fsCommits makes several commits of existing files from chunks the
// caller sent, in one metadata transaction: the mount's write-back of
// many small files. Each commit is as POST /files/commit without a
// checksum; one that fails is reported in its result and does not stop
// the others. The request is charged the bytes of all of them.
func (a *API) fsCommits(c *gin.Context) {
	var b struct {
		Commits []apiclient.Commit `json:"commits"`
	}
	if !a.bindJSON(c, &b, false) || !a.batchSize(c, len(b.Commits), maxBatchCommits, "commits", "commits") {
		return
	}
	u := user(c)
	reqs := make([]meta.CommitRequest, len(b.Commits))
	var total int64
	for i, in := range b.Commits {
		if in.FileID <= 0 {
			a.bad(c, "commit %d: file_id is required", i)
			return
		}
		if len(in.CommitID) > meta.MaxCommitIDLen {
			a.bad(c, "commit %d: commit_id has at most %d bytes", i, meta.MaxCommitIDLen)
			return
		}
		req := meta.CommitRequest{Owner: u.ID, Entry: in.FileID, Base: in.BaseID, RequireBase: in.RequireBase, CommitID: in.CommitID, CreatedBy: u.ID}
		if in.MTime != nil {
			if !a.validTime(c, fmt.Sprintf("commit %d: mtime", i), *in.MTime) {
				return
			}
			req.MTime = *in.MTime
		}
		var err error
		if req.Manifest, err = apiclient.ManifestOf(in.Chunks); err != nil {
			a.bad(c, "commit %d: %v", i, err)
			return
		}
		size := req.Manifest.DataSize() // holes cost nothing
		if size > a.cfg.MaxUploadSize {
			a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("commit %d: files are limited to %d bytes", i, a.cfg.MaxUploadSize))
			return
		}
		reqs[i] = req
		total += size
	}
	if !a.chargeUpload(c, total) {
		return
	}
	res, err := a.Files.CommitBatch(c.Request.Context(), reqs, files.CommitOptions{})
	if err != nil {
		a.fail(c, err)
		return
	}
	a.replyBatch(c, len(res), func(i int) (gin.H, error) {
		r := res[i]
		return gin.H{"entry": fsView(r.Entry), "version": r.Version.Number, "version_id": r.Version.ID}, r.Err
	})
}

// maxBatchIDs bounds the ids one POST /fs/ids reserves, and
// maxBatchCreates the files of one POST /fs/files.
const (
	maxBatchIDs     = 1024
	maxBatchCreates = 256
)

// fsReserveIDs reserves entry ids for the caller, who names the files it
// creates with them before it tells the server (POST /fs/files): the
// mount's creates answer without a round trip.
func (a *API) fsReserveIDs(c *gin.Context) {
	var b struct {
		Count int `json:"count"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	if b.Count < 1 || b.Count > maxBatchIDs {
		a.bad(c, "count must be 1 to %d", maxBatchIDs)
		return
	}
	ids, err := a.tree.ReserveEntryIDs(c.Request.Context(), user(c).ID, b.Count)
	a.reply(c, http.StatusOK, gin.H{"ids": ids}, err)
}

// fsCreateFiles creates several empty files in one metadata transaction,
// each with an id reserved for the caller (POST /fs/ids) and the times it
// was made at: the mount's creates, made at once and told in a burst. One
// that fails (a taken name, a missing folder, an id not the caller's) is
// reported in its result and does not stop the others; one made already
// by the same request (sent again) is answered as made.
func (a *API) fsCreateFiles(c *gin.Context) {
	var b struct {
		Files []apiclient.NewFile `json:"files"`
	}
	if !a.bindJSON(c, &b, false) || !a.batchSize(c, len(b.Files), maxBatchCreates, "files", "files") {
		return
	}
	owner := user(c).ID
	es := make([]dfms.Entry, len(b.Files))
	for i, f := range b.Files {
		if f.ID <= 0 || f.Parent <= 0 {
			a.bad(c, "file %d: id and parent_id are required", i)
			return
		}
		e := dfms.Entry{ID: f.ID, Owner: owner, Parent: f.Parent, Name: f.Name, Kind: dfms.KindFile, Mode: f.Mode & 0o7777,
			UID: f.UID, GID: f.GID, MIME: mime.TypeByExtension(path.Ext(f.Name))}
		for _, t := range []struct {
			name string
			in   *time.Time
			out  *time.Time
		}{{"mtime", f.MTime, &e.MTime}, {"ctime", f.CTime, &e.CTime}, {"atime", f.ATime, &e.ATime}, {"named", f.Named, &e.Named}} {
			if t.in == nil {
				continue
			}
			if !a.validTime(c, fmt.Sprintf("file %d: %s", i, t.name), *t.in) {
				return
			}
			*t.out = *t.in
		}
		es[i] = e
	}
	res, err := a.tree.CreateEntries(c.Request.Context(), es)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.replyBatch(c, len(res), func(i int) (gin.H, error) { return gin.H{"entry": fsView(res[i].Entry)}, res[i].Err })
}

// maxBatchTrash bounds the entries of one POST /fs/trash.
const maxBatchTrash = 1024

// fsTrash moves several entries to the trash in one metadata transaction,
// each as deleted at its time: the mount's unlinks, made at once and told
// in a burst. One that fails (NOT_FOUND if it is not live: a retried
// request finds the ones it trashed so) is reported in its result and
// does not stop the others.
func (a *API) fsTrash(c *gin.Context) {
	var b struct {
		Items []apiclient.TrashItem `json:"items"`
	}
	if !a.bindJSON(c, &b, false) || !a.batchSize(c, len(b.Items), maxBatchTrash, "items", "entries") {
		return
	}
	items := make([]meta.TrashItem, len(b.Items))
	for i, in := range b.Items {
		if in.ID <= 0 {
			a.bad(c, "item %d: id is required", i)
			return
		}
		items[i].ID = in.ID
		if in.At != nil {
			if !a.validTime(c, fmt.Sprintf("item %d: at", i), *in.At) {
				return
			}
			items[i].At = *in.At
		}
	}
	errs, err := a.trash.TrashEntries(c.Request.Context(), user(c).ID, items)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.replyBatch(c, len(errs), func(i int) (gin.H, error) { return gin.H{}, errs[i] })
}

// replyBatch answers a batch of n items: one result each, in order, what
// item(i) returns or, if it returns an error, the error envelope's error
// member for it.
func (a *API) replyBatch(c *gin.Context, n int, item func(i int) (gin.H, error)) {
	out := make([]gin.H, n)
	for i := range out {
		h, err := item(i)
		if err != nil {
			h = gin.H{"error": a.itemError(c, err)}
		}
		out[i] = h
	}
	c.JSON(http.StatusOK, gin.H{"results": out})
}

// itemError is the envelope's error member for err, one item of a batch.
func (a *API) itemError(c *gin.Context, err error) errorInfo {
	var mce *meta.MissingChunksError
	if errors.As(err, &mce) {
		miss := make([]string, len(mce.Hashes))
		for i, h := range mce.Hashes {
			miss[i] = h.String()
		}
		return errorInfo{Code: "CHUNKS_MISSING", Message: "some chunks are not stored; upload them and commit again",
			RequestID: c.GetString(ctxRequestID), Details: gin.H{"missing": miss}}
	}
	ks, ok := kindStatus[dfms.KindOf(err)]
	if !ok || (ks.status >= 500 && ks.status != http.StatusNotImplemented && ks.status != http.StatusInsufficientStorage) {
		a.Log.Error("batch item failed", "request_id", c.GetString(ctxRequestID), "path", c.FullPath(), "err", err)
	}
	if !ok {
		return errorInfo{Code: "INTERNAL_ERROR", Message: "internal error; see the server log for request " + c.GetString(ctxRequestID),
			RequestID: c.GetString(ctxRequestID)}
	}
	return errorInfo{Code: ks.code, Message: userMessage(err), RequestID: c.GetString(ctxRequestID)}
}
