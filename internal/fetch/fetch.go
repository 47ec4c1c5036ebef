// Package fetch downloads a URL to a file, for data sets and model files.
//
// A download goes to DEST.partial beside the destination and is renamed to DEST only once it
// is complete and, when a SHA-256 is given, verified; so DEST, when it exists, is always whole.
// An interrupted download (a dropped connection, a truncated body, a cancelled context) leaves
// DEST.partial behind, and the next call resumes it with an HTTP Range request; when the server
// ignores the Range, the download starts again from the beginning. A checksum mismatch deletes
// the downloaded file and says so.
//
//	path, err := fetch.File(ctx, fetch.Request{
//		URL:    "https://example.org/data.tar.gz",
//		Dest:   filepath.Join(cacheDir, "data.tar.gz"),
//		SHA256: "c40f74a1...",
//		Progress: os.Stderr,
//	})
//
// Two processes downloading the same file at the same moment are not coordinated: each may
// append to the same partial file, and the checksum then catches the damage.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sentibench/sentibench/internal/progress"
)

// Request says what to download and where.
type Request struct {
	// URL is the address to GET.
	URL string
	// Dest is the file to create. Its directory is created when missing.
	Dest string
	// SHA256 is the expected checksum in hex; empty skips the check (the file is still only
	// renamed into place once the whole body has arrived).
	SHA256 string
	// Size is the expected size in bytes, when known (0: not known). A body of another size
	// is an error.
	Size int64
	// Header holds extra request headers (e.g. Authorization).
	Header http.Header
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
	// Retries is how many more times to try, resuming, after a connection drops or a body
	// arrives truncated (default 0: report the error at once; the next call resumes).
	Retries int
	// RetryWait is the pause before the first retry; it doubles after each (default 1s).
	RetryWait time.Duration
	// Progress receives progress reports (nil: none); ProgressMode picks their form.
	Progress     io.Writer
	ProgressMode progress.Mode
	// Label names the download in progress lines (default: the destination's file name).
	Label string
}

// PartialSuffix is appended to Dest for the file being downloaded.
const PartialSuffix = ".partial"

// File downloads req.URL to req.Dest unless req.Dest already exists, and returns req.Dest.
// An existing Dest is trusted as is: it was only put there after its checksum matched (use
// VerifyFile to check it again).
func File(ctx context.Context, req Request) (string, error) {
	if req.URL == "" || req.Dest == "" {
		return "", errors.New("fetch: URL and destination are both required")
	}
	if _, err := os.Stat(req.Dest); err == nil {
		return req.Dest, nil
	}
	if err := os.MkdirAll(filepath.Dir(req.Dest), 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", req.URL, err)
	}
	want := strings.ToLower(req.SHA256)
	if want != "" {
		if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("download %s: bad SHA-256 %q (want 64 hex digits)", req.URL, req.SHA256)
		}
	}
	wait := req.RetryWait
	if wait <= 0 {
		wait = time.Second
	}
	for attempt := 0; ; attempt++ {
		err := get(ctx, req, want)
		if err == nil {
			return req.Dest, nil
		}
		var tr transientError
		if !errors.As(err, &tr) || attempt >= req.Retries || ctx.Err() != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("download %s: %w (partial download kept at %s)", req.URL, ctx.Err(), req.Dest+PartialSuffix)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// transientError marks a failure that a retry may cure: the download can resume.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// get makes one attempt: it resumes the partial file when there is one.
func get(ctx context.Context, req Request, want string) error {
	partial := req.Dest + PartialSuffix
	var have int64
	if fi, err := os.Stat(partial); err == nil {
		have = fi.Size()
	}
	client := req.Client
	if client == nil {
		client = http.DefaultClient
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", req.URL, err)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	// Ask for the bytes as stored: a transparently decompressed body would not match the
	// checksum, and could not be resumed.
	hreq.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		hreq.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", req.URL, ctx.Err())
		}
		return transientError{fmt.Errorf("download %s: %w", req.URL, err)}
	}
	defer resp.Body.Close()

	// total is the whole file's size when the server tells it (-1 when not).
	start, total := int64(0), int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		s, t, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || s != have {
			// An answer for another range than asked: start again from the beginning.
			resp.Body.Close()
			if err := os.Remove(partial); err != nil {
				return fmt.Errorf("download %s: %w", req.URL, err)
			}
			return get(ctx, req, want)
		}
		start, total = s, t
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The partial file may already hold everything: check it (when there is a checksum or
		// a size to check it by), else start again.
		resp.Body.Close()
		if want != "" || req.Size > 0 {
			if err := finish(req, partial, want, nil); err == nil {
				return nil
			}
		}
		if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("download %s: %w", req.URL, err)
		}
		return get(ctx, req, want)
	case resp.StatusCode == http.StatusOK:
		// A fresh download, or a server that ignores Range: (re)start from byte 0.
		total = resp.ContentLength
	default:
		return fmt.Errorf("download %s: server answered %s", req.URL, resp.Status)
	}
	if req.Size > 0 && total >= 0 && total != req.Size {
		return fmt.Errorf("download %s: server says the file has %d bytes, expected %d", req.URL, total, req.Size)
	}
	if total < 0 && req.Size > 0 {
		total = req.Size
	}

	flags := os.O_WRONLY | os.O_CREATE
	if start == 0 {
		flags |= os.O_TRUNC
	} else {
		flags |= os.O_APPEND
	}
	f, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return fmt.Errorf("download %s: %w", req.URL, err)
	}
	h := sha256.New()
	if start > 0 {
		if err := hashFile(h, partial, start); err != nil {
			f.Close()
			return fmt.Errorf("download %s: rereading %s: %w", req.URL, partial, err)
		}
	}

	label := req.Label
	if label == "" {
		label = "download " + filepath.Base(req.Dest)
	}
	p := progress.New(req.Progress, progress.Options{Label: label, Unit: "B", Total: max(total, 0), Mode: req.ProgressMode})
	p.Start(start)
	n, copyErr := io.Copy(io.MultiWriter(f, h), p.Reader(resp.Body))
	p.Done()
	got := start + n
	if err := f.Sync(); err != nil && copyErr == nil {
		copyErr = err
	}
	if err := f.Close(); err != nil && copyErr == nil {
		copyErr = err
	}
	if copyErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w after %d bytes (partial download kept at %s; run again to resume)",
				req.URL, ctx.Err(), got, partial)
		}
		what := "connection failed"
		if errors.Is(copyErr, io.ErrUnexpectedEOF) {
			what = "body truncated"
		}
		of := ""
		if total >= 0 {
			of = fmt.Sprintf(" of %d", total)
		}
		return transientError{fmt.Errorf("download %s: %s after %d%s bytes: %v (partial download kept at %s; run again to resume)",
			req.URL, what, got, of, copyErr, partial)}
	}
	if total >= 0 && got != total {
		return transientError{fmt.Errorf("download %s: body truncated: got %d of %d bytes (partial download kept at %s; run again to resume)",
			req.URL, got, total, partial)}
	}
	return finish(req, partial, want, h)
}

// finish checks the partial file's checksum (h holds it already, or nil to hash the file) and
// renames it into place; on a mismatch it deletes the file.
func finish(req Request, partial, want string, h hash.Hash) error {
	if h == nil {
		h = sha256.New()
		if err := hashFile(h, partial, -1); err != nil {
			return fmt.Errorf("download %s: %w", req.URL, err)
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		rmErr := os.Remove(partial)
		msg := fmt.Sprintf("download %s: checksum mismatch: SHA-256 %s, want %s; deleted the downloaded file %s",
			req.URL, got, want, partial)
		if rmErr != nil {
			msg += fmt.Sprintf(" (delete failed: %v)", rmErr)
		}
		return errors.New(msg)
	}
	if req.Size > 0 {
		if fi, err := os.Stat(partial); err == nil && fi.Size() != req.Size {
			os.Remove(partial)
			return fmt.Errorf("download %s: %d bytes, expected %d; deleted the downloaded file %s", req.URL, fi.Size(), req.Size, partial)
		}
	}
	if err := os.Rename(partial, req.Dest); err != nil {
		return fmt.Errorf("download %s: %w", req.URL, err)
	}
	if d, err := os.Open(filepath.Dir(req.Dest)); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

// hashFile feeds the first n bytes of path to h (all of it when n < 0).
func hashFile(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	m, err := io.Copy(h, r)
	if err != nil {
		return err
	}
	if n >= 0 && m != n {
		return fmt.Errorf("%s: %d bytes, expected %d", path, m, n)
	}
	return nil
}

// VerifyFile checks that path's SHA-256 is want (hex).
func VerifyFile(path, want string) error {
	h := sha256.New()
	if err := hashFile(h, path, -1); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(want) {
		return fmt.Errorf("%s: SHA-256 %s, want %s", path, got, want)
	}
	return nil
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": returned as -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if tot == "*" {
		return start, -1, true
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return start, total, true
}
