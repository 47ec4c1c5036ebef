package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sentibench/sentibench/internal/progress"
)

// maxReviewBytes bounds one review (the longest IMDB review has about 14 KB): a larger member
// means a damaged archive, not a review.
const maxReviewBytes = 16 << 20

// imdbFolders are the four labelled folders of the aclImdb layout, in canonical order.
var imdbFolders = [][2]string{{"train", "neg"}, {"train", "pos"}, {"test", "neg"}, {"test", "pos"}}

// readPath reads a file or directory given as the data path.
func readPath(ctx context.Context, path string, wantUnsup bool, o Options) (*source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", path, unwrapPathError(err))
	}
	if fi.IsDir() {
		return readDir(ctx, path, wantUnsup, o)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return readTable(ctx, path, ',', o)
	case ".tsv", ".tab":
		return readTable(ctx, path, '\t', o)
	case ".jsonl", ".ndjson":
		return readJSONL(ctx, path, o)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	return readIMDBReader(ctx, f, path, fi.Size(), wantUnsup, o)
}

// unwrapPathError drops the *PathError wrapper (its path is already in our message).
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readIMDBReader reads an archive in the aclImdb layout and requires its four labelled folders.
func readIMDBReader(ctx context.Context, r io.Reader, name string, size int64, wantUnsup bool, o Options) (*source, error) {
	p := progress.New(o.Progress, progress.Options{Label: "read " + filepath.Base(name), Unit: "B", Total: size, Mode: o.ProgressMode})
	got, err := readArchive(ctx, p.Reader(r), name, func(part, label string) bool {
		return label != "unsup" || wantUnsup
	})
	p.Done()
	if err != nil {
		return nil, err
	}
	src := &source{name: name, format: "imdb-archive", imdb: true}
	for _, pl := range imdbFolders {
		items := got[pl]
		if len(items) == 0 {
			return nil, fmt.Errorf("%s: no reviews in %s/%s/ (expected the aclImdb layout: aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt)", name, pl[0], pl[1])
		}
		src.folders = append(src.folders, folder{part: pl[0], label: pl[1], items: items})
	}
	if items := got[[2]string{"train", "unsup"}]; len(items) > 0 {
		src.folders = append(src.folders, folder{part: "unsup", items: items})
	}
	return src, nil
}

// readUnsupPath reads the unlabelled reviews from an archive or directory holding
// aclImdb/train/unsup.
func readUnsupPath(ctx context.Context, path string, o Options) (folder, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return folder{}, fmt.Errorf("unsup data %s: %w", path, unwrapPathError(err))
	}
	var items []item
	if fi.IsDir() {
		root := imdbRoot(path)
		dir := filepath.Join(root, "train", "unsup")
		items, err = readTextFiles(ctx, dir, "train/unsup/", o)
		if err != nil {
			return folder{}, err
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return folder{}, fmt.Errorf("unsup data %s: %w", path, unwrapPathError(err))
		}
		defer f.Close()
		p := progress.New(o.Progress, progress.Options{Label: "read " + filepath.Base(path), Unit: "B", Total: fi.Size(), Mode: o.ProgressMode})
		got, err := readArchive(ctx, p.Reader(f), path, func(part, label string) bool { return label == "unsup" })
		p.Done()
		if err != nil {
			return folder{}, err
		}
		items = got[[2]string{"train", "unsup"}]
	}
	if len(items) == 0 {
		return folder{}, fmt.Errorf("unsup data %s: no reviews in train/unsup/ (expected aclImdb/train/unsup/<id>_0.txt)", path)
	}
	return folder{part: "unsup", items: items}, nil
}

// readArchive streams a tar archive (gzip-compressed or not) and returns the reviews of the
// aclImdb folders that want accepts, keyed by {part, label}, each in byte-wise file-name order.
// Members are matched as torch_ref.py matches them: (^|/)(train|test)/(pos|neg)/NAME.txt, plus
// train/unsup. Everything else in the archive is skipped.
func readArchive(ctx context.Context, r io.Reader, name string, want func(part, label string) bool) (map[[2]string][]item, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(2)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file, not an archive", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var tr *tar.Reader
	var zr *gzip.Reader
	inside := ""
	// cr counts the bytes the tar reader consumes, to tell an archive that ends properly (with
	// the end-of-archive zero blocks) from one cut off between two members.
	cr := &countReader{}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err = gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: not a gzip archive: %w", name, err)
		}
		defer zr.Close()
		cr.r = zr
		inside = " inside the gzip stream"
	} else {
		cr.r = br
	}
	tr = tar.NewReader(cr)
	var lastEnd int64    // where the last member's data (padded to 512 bytes) end
	lastMember := "none" // the last member's name
	out := map[[2]string][]item{}
	var buf []byte
	first := true
	members := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			if first {
				return nil, fmt.Errorf("%s: not a tar archive%s (no entries)", name, inside)
			}
			if cr.n < lastEnd+512 {
				return nil, fmt.Errorf("%s: truncated archive: the data end after member %s, without the end-of-archive marker", name, lastMember)
			}
			break
		}
		if err != nil {
			switch {
			case first && zr == nil:
				return nil, fmt.Errorf("%s: not a gzip or tar archive (nor a .csv, .tsv or .jsonl file)", name)
			case first && errors.Is(err, tar.ErrHeader):
				return nil, fmt.Errorf("%s: not a tar archive%s: %w", name, inside, err)
			case errors.Is(err, io.ErrUnexpectedEOF):
				return nil, fmt.Errorf("%s: truncated archive: the data end inside a tar header (after %d members)", name, members)
			}
			return nil, fmt.Errorf("%s: damaged archive (after %d members): %w", name, members, err)
		}
		first = false
		members++
		lastEnd = cr.n + (h.Size+511)/512*512
		lastMember = h.Name
		part, label, file, ok := matchMember(h.Name)
		if !ok || !isRegular(h.Typeflag) || !want(part, label) {
			continue
		}
		if h.Size > maxReviewBytes {
			return nil, fmt.Errorf("%s: member %s: %d bytes, too large for a review (damaged archive?)", name, h.Name, h.Size)
		}
		if int64(cap(buf)) < h.Size {
			buf = make([]byte, h.Size)
		}
		buf = buf[:h.Size]
		if _, err := io.ReadFull(tr, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: truncated archive: the data end inside member %s", name, h.Name)
			}
			return nil, fmt.Errorf("%s: member %s: %w", name, h.Name, err)
		}
		if err := checkText(buf); err != nil {
			return nil, fmt.Errorf("%s: member %s: %w", name, h.Name, err)
		}
		key := [2]string{part, label}
		out[key] = append(out[key], item{name: part + "/" + label + "/" + file, text: string(buf), rating: ratingOf(file)})
	}
	if zr != nil {
		// The tar reader stops at the end-of-archive blocks; read the gzip stream to its end
		// so that its checksum and length are verified too.
		if _, err := io.Copy(io.Discard, zr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%s: truncated archive: the gzip stream ends early", name)
			}
			return nil, fmt.Errorf("%s: damaged archive: %w", name, err)
		}
	}
	for key, items := range out {
		slices.SortStableFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
		out[key] = items
	}
	return out, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// isRegular reports whether a tar entry is a regular file (Python's TarInfo.isfile()).
func isRegular(t byte) bool { return t == tar.TypeReg || t == 0 || t == tar.TypeCont }

// matchMember matches a member name as torch_ref.py's (?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$
// does, and also train/unsup/NAME.txt.
func matchMember(name string) (part, label, file string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return
	}
	file = name[i+1:]
	if len(file) <= len(".txt") || !strings.HasSuffix(file, ".txt") {
		return
	}
	rest := name[:i]
	i = strings.LastIndexByte(rest, '/')
	if i < 0 {
		return
	}
	label, rest = rest[i+1:], rest[:i]
	i = strings.LastIndexByte(rest, '/')
	part = rest[i+1:] // i == -1: the name starts with the part
	switch {
	case (part == "train" || part == "test") && (label == "pos" || label == "neg"):
		return part, label, file, true
	case part == "train" && label == "unsup":
		return part, label, file, true
	}
	return "", "", "", false
}

// ratingOf reads the rating from a file name <id>_<rating>.txt; 0 when there is none.
func ratingOf(file string) int {
	stem := strings.TrimSuffix(file, ".txt")
	i := strings.LastIndexByte(stem, '_')
	if i < 0 {
		return 0
	}
	r, err := strconv.Atoi(stem[i+1:])
	if err != nil || r < 0 {
		return 0
	}
	return r
}

// checkText rejects what cannot be a review: an empty text, or one that is not UTF-8.
func checkText(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty review")
	}
	if !utf8.Valid(b) {
		off := invalidUTF8Offset(b)
		return fmt.Errorf("not valid UTF-8 (byte 0x%02x at offset %d)", b[off], off)
	}
	return nil
}

// imdbRoot finds the aclImdb root as torch_ref.py does: the directory itself when it holds
// train/, else its aclImdb/ subdirectory when there is one.
func imdbRoot(path string) string {
	if isDir(filepath.Join(path, "train")) || isDir(filepath.Join(path, "test")) {
		return path
	}
	if sub := filepath.Join(path, "aclImdb"); isDir(sub) {
		return sub
	}
	return path
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// sampleReader returns the embedded sample archive.
func sampleReader() io.Reader { return bytes.NewReader(sampleArchive) }
