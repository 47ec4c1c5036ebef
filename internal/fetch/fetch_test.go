package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// payload returns n reproducible bytes and their SHA-256.
func payload(n int) ([]byte, string) {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// serveContent serves b with Range support (http.ServeContent), counting body bytes sent and
// remembering the last Range header.
type server struct {
	body      []byte
	sent      atomic.Int64
	requests  atomic.Int64
	lastRange atomic.Value
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.lastRange.Store(r.Header.Get("Range"))
	cw := &countW{ResponseWriter: w, n: &s.sent}
	http.ServeContent(cw, r, "x.tar.gz", time.Time{}, bytes.NewReader(s.body))
}

type countW struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countW) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func TestFileSuccess(t *testing.T) {
	body, sum := payload(300_000)
	srv := &server{body: body}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "cache", "x.tar.gz")
	var prog bytes.Buffer
	got, err := File(context.Background(), Request{URL: ts.URL + "/x.tar.gz", Dest: dest, SHA256: sum, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if got != dest {
		t.Fatalf("path %q, want %q", got, dest)
	}
	checkFile(t, dest, body)
	if _, err := os.Stat(dest + PartialSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial file left behind: %v", err)
	}
	if !strings.Contains(prog.String(), "download x.tar.gz: 293.0 KiB / 293.0 KiB") {
		t.Fatalf("progress output %q", prog.String())
	}
	// A second call finds the file and does not download again.
	if _, err := File(context.Background(), Request{URL: ts.URL + "/x.tar.gz", Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if err := VerifyFile(dest, sum); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFile(dest, strings.Repeat("0", 64)); err == nil {
		t.Fatal("VerifyFile accepted a wrong checksum")
	}
}

func TestFileResumesPartial(t *testing.T) {
	body, sum := payload(200_000)
	srv := &server{body: body}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(dest+PartialSuffix, body[:150_000], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
	if r := srv.lastRange.Load(); r != "bytes=150000-" {
		t.Fatalf("Range header %q, want bytes=150000-", r)
	}
	if n := srv.sent.Load(); n != 50_000 {
		t.Fatalf("server sent %d body bytes, want only the missing 50000", n)
	}
}

func TestFileServerIgnoresRange(t *testing.T) {
	body, sum := payload(100_000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK) // the whole file, whatever Range said
		w.Write(body)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	// A partial file whose bytes are wrong: appending to it would break the checksum.
	if err := os.WriteFile(dest+PartialSuffix, bytes.Repeat([]byte{'z'}, 40_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

func TestFileWrongContentRangeRestarts(t *testing.T) {
	body, sum := payload(10_000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			// 206 for another range than the one asked for.
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body)
			return
		}
		w.Write(body)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x")
	os.WriteFile(dest+PartialSuffix, body[:5000], 0o644)
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

func TestFileCompletePartial416(t *testing.T) {
	body, sum := payload(10_000)
	srv := &server{body: body}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x")
	os.WriteFile(dest+PartialSuffix, body, 0o644) // complete, but never renamed
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

func TestFileChecksumMismatch(t *testing.T) {
	body, _ := payload(50_000)
	_, otherSum := payload(50_001)
	ts := httptest.NewServer(&server{body: body})
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	_, err := File(context.Background(), Request{URL: ts.URL + "/x.tar.gz", Dest: dest, SHA256: otherSum})
	if err == nil {
		t.Fatal("no error on a checksum mismatch")
	}
	for _, want := range []string{"checksum mismatch", ts.URL + "/x.tar.gz", "deleted the downloaded file", otherSum} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	assertAbsent(t, dest)
	assertAbsent(t, dest+PartialSuffix)
}

func TestFileNotFound(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	url := ts.URL + "/missing.tar.gz"
	_, err := File(context.Background(), Request{URL: url, Dest: dest, Retries: 3, RetryWait: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("error %v, want one naming %s and 404 Not Found", err, url)
	}
	assertAbsent(t, dest)
}

// TestFileTruncatedBody: the server declares the full length and sends only part of it. The
// error says so, the partial file stays, no destination appears; the next call resumes.
func TestFileTruncatedBody(t *testing.T) {
	body, sum := payload(100_000)
	var first atomic.Bool
	first.Store(true)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.Swap(false) {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body[:30_000]) // then return: the server closes the short response
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(body))
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	_, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum})
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "of 100000 bytes") {
		t.Fatalf("error %v, want a truncated body of 100000 bytes", err)
	}
	assertAbsent(t, dest)
	if fi, err := os.Stat(dest + PartialSuffix); err != nil || fi.Size() != 30_000 {
		t.Fatalf("partial file: %v %v, want 30000 bytes kept", fi, err)
	}
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

// dropServer writes the headers and part of the body on a raw connection, then closes it, on
// the first `drops` requests; later ones are served properly (with Range).
func dropServer(t *testing.T, body []byte, drops int) *httptest.Server {
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > int64(drops) {
			http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(body))
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		buf.Write(body[:len(body)/3])
		buf.Flush()
		conn.Close()
	}))
}

func TestFileConnectionDropped(t *testing.T) {
	body, sum := payload(90_000)
	ts := dropServer(t, body, 1)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	_, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum})
	if err == nil || !strings.Contains(err.Error(), ts.URL) || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("error %v", err)
	}
	assertAbsent(t, dest)
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

func TestFileRetriesResume(t *testing.T) {
	body, sum := payload(90_000)
	ts := dropServer(t, body, 2)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	if _, err := File(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum, Retries: 2, RetryWait: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
}

func TestFileCancelled(t *testing.T) {
	body, sum := payload(100_000)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body[:20_000])
		w.(http.Flusher).Flush()
		cancel()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)
	dest := filepath.Join(t.TempDir(), "x.tar.gz")
	_, err := File(ctx, Request{URL: ts.URL, Dest: dest, SHA256: sum, Retries: 5})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	assertAbsent(t, dest)
}

func TestFileBadRequest(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "x")
	if _, err := File(context.Background(), Request{URL: "http://127.0.0.1:1/x", Dest: dest, SHA256: "abc"}); err == nil || !strings.Contains(err.Error(), "bad SHA-256") {
		t.Fatalf("error %v", err)
	}
	if _, err := File(context.Background(), Request{Dest: dest}); err == nil {
		t.Fatal("no error without a URL")
	}
	// Nothing listens on port 1: a connection error naming the URL.
	if _, err := File(context.Background(), Request{URL: "http://127.0.0.1:1/x", Dest: dest}); err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/x") {
		t.Fatalf("error %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-9/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, tot, ok := parseContentRange(c.in)
		if s != c.start || tot != c.total || ok != c.ok {
			t.Errorf("%q: %d %d %v", c.in, s, tot, ok)
		}
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the served %d", path, len(got), len(want))
	}
}

func assertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (%v), want no file", path, err)
	}
}
