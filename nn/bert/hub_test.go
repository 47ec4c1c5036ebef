package bert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub imitates the Hugging Face hub's resolve URLs for one model: small files are served
// directly, large ones ("LFS": the weights) by a redirect to a CDN path that carries their
// SHA-256 and size in X-Linked-Etag and X-Linked-Size, as the hub does. Range requests work.
type fakeHub struct {
	*httptest.Server
	id    string
	files map[string][]byte
	lfs   map[string]bool
	// lie replaces the advertised SHA-256 of LFS files.
	lie string

	mu     sync.Mutex
	ranges int // range requests for the content of LFS files
}

func newFakeHub(t *testing.T, id string, files map[string][]byte, lfs ...string) *fakeHub {
	h := &fakeHub{id: id, files: files, lfs: map[string]bool{}}
	for _, f := range lfs {
		h.lfs[f] = true
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		if r.Header.Get("Range") != "" {
			h.mu.Lock()
			h.ranges++
			h.mu.Unlock()
		}
		b, ok := h.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/"+h.id+"/resolve/main/")
	b, exists := h.files[name]
	if !ok || !exists {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if h.lfs[name] {
		sum := sha256.Sum256(b)
		etag := hex.EncodeToString(sum[:])
		if h.lie != "" {
			etag = h.lie
		}
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(b)))
		http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func fixtureFiles(t *testing.T, dir string, names ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func TestResolveHub(t *testing.T) {
	files := fixtureFiles(t, "testdata/mini-bert", "config.json", "model.safetensors", "vocab.txt")
	hub := newFakeHub(t, "test-org/mini-bert", files, "model.safetensors")
	cache := t.TempDir()
	var log bytes.Buffer
	opt := ResolveOptions{CacheDir: cache, Endpoint: hub.URL, Progress: &log}
	dir, err := Resolve(context.Background(), "test-org/mini-bert", opt)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, "test-org", "mini-bert", "main") {
		t.Errorf("cache directory %s", dir)
	}
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: not downloaded intact (%v)", name, err)
		}
	}
	if !strings.Contains(log.String(), "model.safetensors") {
		t.Errorf("no progress for the weights: %q", log.String())
	}
	m := load(t, dir, 1)
	local := load(t, "testdata/mini-bert", 1)
	if m.WeightsHash() != local.WeightsHash() {
		t.Error("the downloaded model differs from the fixture")
	}
	// Offline afterwards: the cached copy is used without asking the server.
	hub.Close()
	if dir2, err := Resolve(context.Background(), "test-org/mini-bert", opt); err != nil || dir2 != dir {
		t.Errorf("offline resolve: %s, %v", dir2, err)
	}
	// A local directory is used as it is.
	if d, err := Resolve(context.Background(), "testdata/mini-bert", opt); err != nil || d != "testdata/mini-bert" {
		t.Errorf("local directory: %s, %v", d, err)
	}
}

func TestResolveHubFallbacksAndErrors(t *testing.T) {
	// No model.safetensors: pytorch_model.bin is taken.
	files := fixtureFiles(t, "testdata/mini-bert", "config.json", "pytorch_model.bin", "vocab.txt")
	hub := newFakeHub(t, "org/bin-only", files, "pytorch_model.bin")
	dir, err := Resolve(context.Background(), "org/bin-only", ResolveOptions{CacheDir: t.TempDir(), Endpoint: hub.URL})
	if err != nil {
		t.Fatal(err)
	}
	if m := load(t, dir, 1); !strings.HasSuffix(m.WeightsFile, "pytorch_model.bin") {
		t.Errorf("loaded %s", m.WeightsFile)
	}

	// An interrupted download resumes with a Range request.
	files = fixtureFiles(t, "testdata/mini-bert", "config.json", "model.safetensors", "vocab.txt")
	hub = newFakeHub(t, "org/resume", files, "model.safetensors")
	cache := t.TempDir()
	part := filepath.Join(cache, "org", "resume", "main", "model.safetensors.partial")
	os.MkdirAll(filepath.Dir(part), 0o755)
	os.WriteFile(part, files["model.safetensors"][:1000], 0o644)
	if _, err := Resolve(context.Background(), "org/resume", ResolveOptions{CacheDir: cache, Endpoint: hub.URL}); err != nil {
		t.Fatal(err)
	}
	if hub.ranges != 1 {
		t.Errorf("%d range requests, want 1 (resume)", hub.ranges)
	}

	// A checksum that does not match deletes the download and says so.
	hub = newFakeHub(t, "org/bad", files, "model.safetensors")
	hub.lie = strings.Repeat("ab", 32)
	_, err = Resolve(context.Background(), "org/bad", ResolveOptions{CacheDir: t.TempDir(), Endpoint: hub.URL})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("bad checksum: %v", err)
	}

	for _, c := range []struct {
		id, want string
		files    map[string][]byte
	}{
		{"org/no-config", "none of config.json", map[string][]byte{"model.safetensors": files["model.safetensors"], "vocab.txt": files["vocab.txt"]}},
		{"org/no-weights", "none of model.safetensors, pytorch_model.bin", map[string][]byte{"config.json": files["config.json"], "vocab.txt": files["vocab.txt"]}},
		{"org/no-tokenizer", "neither tokenizer.json nor vocab.txt", map[string][]byte{"config.json": files["config.json"], "model.safetensors": files["model.safetensors"]}},
	} {
		hub := newFakeHub(t, c.id, c.files)
		_, err := Resolve(context.Background(), c.id, ResolveOptions{CacheDir: t.TempDir(), Endpoint: hub.URL})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.id, err, c.want)
		}
	}
	for _, bad := range []string{"../etc", "a/b/c", "a b", ""} {
		if _, err := Resolve(context.Background(), bad, ResolveOptions{CacheDir: t.TempDir(), Endpoint: "http://127.0.0.1:1"}); err == nil {
			t.Errorf("id %q was accepted", bad)
		}
	}
	// Offline with nothing cached: a clear error.
	_, err = Resolve(context.Background(), "org/never", ResolveOptions{CacheDir: t.TempDir(), Endpoint: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "offline?") {
		t.Errorf("offline, nothing cached: %v", err)
	}
}
