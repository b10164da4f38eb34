package fsck

import (
	"fmt"
	"io"
	"strings"
)

// Report is what a check found, and, with Repair, what it repaired. It
// is also the JSON document of dfms fsck --json; the field names below
// are its keys.
type Report struct {
	// Repair says whether the check repaired what it could.
	Repair bool `json:"repair"`
	// Clean is true when no damage was found.
	Clean bool `json:"clean"`
	// Versions and Parts are the manifests read (of versions and of
	// multipart parts).
	Versions int64 `json:"versions"`
	Parts    int64 `json:"parts"`
	// Chunks and Bytes are the stored chunk rows whose copies were
	// checked, and their size; Copies and CopyBytes the copies read and
	// hashed. Unchecked counts the copies that could not be read (their
	// node down or unreachable): not damage, but not checked either.
	Chunks    int64 `json:"chunks"`
	Bytes     int64 `json:"bytes"`
	Copies    int64 `json:"copies"`
	CopyBytes int64 `json:"copy_bytes"`
	Unchecked int   `json:"unchecked_copies"`
	// Damage counts each kind of damage found.
	Damage Damage `json:"damage"`
	// The damage found, each kind in its list (at most MaxListed items
	// each; Truncated says a list or a list of files was cut).
	MissingChunks []MissingChunk `json:"missing_chunks"`
	LostChunks    []LostChunk    `json:"lost_chunks"`
	BadCopies     []BadCopy      `json:"bad_copies"`
	RefCounts     []RefCount     `json:"ref_counts"`
	DanglingFiles []File         `json:"dangling_files"`
	Truncated     bool           `json:"truncated"`
}

// Damage counts the damage of each kind. Repaired is how many of them
// (bad copies and reference counts) were repaired; Unrepaired the rest.
type Damage struct {
	MissingChunks int `json:"missing_chunks"` // chunks manifests name that are not stored
	LostChunks    int `json:"lost_chunks"`    // stored chunks with no good copy on any node
	BadCopies     int `json:"bad_copies"`     // copies missing or corrupt on a node that should hold them (of chunks not lost)
	RefCounts     int `json:"ref_counts"`     // chunks whose recorded count is not their references
	DanglingFiles int `json:"dangling_files"` // files whose current version does not exist
	Repaired      int `json:"repaired"`
	Unrepaired    int `json:"unrepaired"`
}

// Total is the number of damaged things found.
func (d Damage) Total() int {
	return d.MissingChunks + d.LostChunks + d.BadCopies + d.RefCounts + d.DanglingFiles
}

// MissingChunk is a chunk that manifests name and that is not stored:
// Why says what its row is like; Files are the files (or upload parts)
// that need it.
type MissingChunk struct {
	Chunk string `json:"chunk"` // its hash, in hex
	Why   string `json:"why"`
	Files []File `json:"files"`
}

// LostChunk is a stored chunk of which no node holds a good copy: the
// files that need it (Files) cannot be read whole.
type LostChunk struct {
	Chunk string `json:"chunk"`
	Size  int64  `json:"size"`
	Refs  int64  `json:"refs"` // its recorded reference count
	// Copies are the copies that should exist, all bad.
	Copies []BadCopy `json:"copies"`
	Files  []File    `json:"files"`
}

// BadCopy is a copy of a chunk, on a node that should hold it, that is
// missing, corrupt, or of the wrong size (Problem: "missing", "corrupt",
// "size"). Node is "" for a single chunk store.
type BadCopy struct {
	Chunk    string `json:"chunk"`
	Node     string `json:"node"`
	Problem  string `json:"problem"`
	Error    string `json:"error,omitempty"`
	Repaired bool   `json:"repaired"`
	Note     string `json:"note,omitempty"`
}

// RefCount is a chunk whose recorded reference count (Recorded) is not
// the number of its references in manifests and parts (Counted).
type RefCount struct {
	Chunk    string `json:"chunk"`
	Recorded int64  `json:"recorded"`
	Counted  int64  `json:"counted"`
	Repaired bool   `json:"repaired"`
	Note     string `json:"note,omitempty"`
}

// File is a file, or a multipart upload's part, that damage concerns:
// its owner's id, its entry id (a part's: its upload's directory), the
// version's id (0 for a part; for a dangling file, the missing version
// it names), the upload and part number of a part, its path from the
// owner's root ("" if unknown) and whether it is in the trash.
type File struct {
	Owner   int64  `json:"owner"`
	Entry   int64  `json:"entry"`
	Version int64  `json:"version,omitempty"`
	Upload  string `json:"upload,omitempty"`
	Part    int    `json:"part,omitempty"`
	Path    string `json:"path"`
	Trashed bool   `json:"trashed,omitempty"`
}

// finish fills in the totals.
func (r *Report) finish() {
	// Empty lists, not null, in JSON.
	r.MissingChunks = nonNil(r.MissingChunks)
	r.LostChunks = nonNil(r.LostChunks)
	r.BadCopies = nonNil(r.BadCopies)
	r.RefCounts = nonNil(r.RefCounts)
	r.DanglingFiles = nonNil(r.DanglingFiles)
	r.Clean = r.Damage.Total() == 0
	r.Damage.Unrepaired = r.Damage.Total() - r.Damage.Repaired
}

// WriteText writes the report for people: the summary, then each damaged
// thing on a line (with the files that need a chunk under it).
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "checked %d versions, %d upload parts, %d chunks (%d bytes), %d copies (%d bytes)",
		r.Versions, r.Parts, r.Chunks, r.Bytes, r.Copies, r.CopyBytes)
	if r.Unchecked > 0 {
		fmt.Fprintf(&b, "; %d copies could not be read (node down or unreachable)", r.Unchecked)
	}
	b.WriteString("\n")
	files := func(fs []File) {
		for _, f := range fs {
			fmt.Fprintf(&b, "    needed by %s\n", f)
		}
	}
	for _, c := range r.MissingChunks {
		fmt.Fprintf(&b, "missing chunk %s: %s (not repairable)\n", c.Chunk, c.Why)
		files(c.Files)
	}
	for _, c := range r.LostChunks {
		fmt.Fprintf(&b, "lost chunk %s (%d bytes): no good copy on any node (not repairable)\n", c.Chunk, c.Size)
		for _, bc := range c.Copies {
			fmt.Fprintf(&b, "    %s copy on %s%s\n", bc.Problem, nodeName(bc.Node), note(bc.Note))
		}
		files(c.Files)
	}
	for _, c := range r.BadCopies {
		fmt.Fprintf(&b, "%s copy of chunk %s on %s%s%s\n", c.Problem, c.Chunk, nodeName(c.Node), repaired(c.Repaired, r.Repair), note(c.Note))
	}
	for _, c := range r.RefCounts {
		fmt.Fprintf(&b, "reference count of chunk %s is %d, its references %d%s%s\n", c.Chunk, c.Recorded, c.Counted, repaired(c.Repaired, r.Repair), note(c.Note))
	}
	for _, f := range r.DanglingFiles {
		fmt.Fprintf(&b, "dangling file %s: its current version does not exist (not repairable)\n", f)
	}
	if r.Truncated {
		b.WriteString("(lists cut short; the counts below are whole)\n")
	}
	d := r.Damage
	if r.Clean {
		b.WriteString("no damage found\n")
	} else {
		fmt.Fprintf(&b, "damage: %d missing chunks, %d lost chunks, %d bad copies, %d wrong reference counts, %d dangling files; %d repaired, %d not\n",
			d.MissingChunks, d.LostChunks, d.BadCopies, d.RefCounts, d.DanglingFiles, d.Repaired, d.Unrepaired)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (f File) String() string {
	where := f.Path
	if where == "" {
		where = fmt.Sprintf("entry %d", f.Entry)
	}
	s := fmt.Sprintf("%s (owner %d", where, f.Owner)
	switch {
	case f.Upload != "":
		s += fmt.Sprintf(", upload %s part %d", f.Upload, f.Part)
	case f.Version != 0:
		s += fmt.Sprintf(", version id %d", f.Version)
	}
	if f.Trashed {
		s += ", in the trash"
	}
	return s + ")"
}

func repaired(done, repair bool) string {
	switch {
	case done:
		return ": repaired"
	case repair:
		return ": not repaired"
	}
	return ""
}

func note(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nodeName(id string) string {
	if id == "" {
		return "the chunk store"
	}
	return "node " + id
}
