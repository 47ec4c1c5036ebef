package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// archiveServer serves a small archive in the aclImdb layout, counting requests.
func archiveServer(t *testing.T) (*httptest.Server, []byte, string, *atomic.Int64) {
	body := makeTarGz(t, smallIMDB())
	sum := sha256.Sum256(body)
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != "/aclImdb_v1.tar.gz" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "aclImdb_v1.tar.gz", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(ts.Close)
	return ts, body, hex.EncodeToString(sum[:]), &n
}

func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	flagPath := writeFile(t, dir, "flag.tar.gz", []byte("x"))
	envPath := writeFile(t, dir, "env.tar.gz", []byte("x"))
	cache := filepath.Join(dir, "cache")
	cached := writeFile(t, cache, "imdb/aclImdb_v1.tar.gz", []byte("x"))
	ctx := context.Background()
	for _, c := range []struct {
		l    Locator
		want string
	}{
		{Locator{Path: flagPath, Env: Env{Data: envPath, Cache: cache}}, flagPath},
		{Locator{Path: "sample", Env: Env{Data: envPath}}, "sample"},
		{Locator{Env: Env{Data: envPath, Cache: cache}}, envPath},
		{Locator{Env: Env{Data: "sample", Cache: cache}}, "sample"},
		{Locator{Env: Env{Cache: cache}, NoDownload: true}, cached},
	} {
		got, err := Resolve(ctx, c.l)
		if err != nil || got != c.want {
			t.Errorf("Resolve(%+v) = %q, %v; want %q", c.l, got, err, c.want)
		}
	}
	_, err := Resolve(ctx, Locator{Path: filepath.Join(dir, "nope"), Env: Env{Data: envPath}})
	if err == nil || !strings.Contains(err.Error(), "nope (from --data)") {
		t.Fatalf("missing --data path: %v", err)
	}
	_, err = Resolve(ctx, Locator{Env: Env{Data: filepath.Join(dir, "gone"), Cache: cache}})
	if err == nil || !strings.Contains(err.Error(), "gone (from $SENTIBENCH_DATA)") {
		t.Fatalf("missing env path: %v", err)
	}
	_, err = Resolve(ctx, Locator{Env: Env{Cache: filepath.Join(dir, "empty")}, NoDownload: true})
	if err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("no data, no download: %v", err)
	}
}

func TestResolveDownloads(t *testing.T) {
	ts, body, sum, requests := archiveServer(t)
	cache := filepath.Join(t.TempDir(), "cache")
	var prog bytes.Buffer
	l := Locator{Env: Env{Cache: cache}, URL: ts.URL + "/aclImdb_v1.tar.gz", SHA256: sum, Progress: &prog}
	path, err := Resolve(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(cache, "imdb", IMDBFile) {
		t.Fatalf("path %s", path)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Fatal("downloaded file differs")
	}
	if !strings.Contains(prog.String(), "download aclImdb_v1.tar.gz") {
		t.Fatalf("progress %q", prog.String())
	}
	c, err := Load(context.Background(), Options{Path: path, Seed: DefaultSeed})
	if err != nil || len(c.Examples) != 20 {
		t.Fatalf("load after download: %v", err)
	}
	// Second time: from the cache, no request.
	if _, err := Resolve(context.Background(), l); err != nil || requests.Load() != 1 {
		t.Fatalf("%v, %d requests", err, requests.Load())
	}
}

func TestResolveDownloadFailures(t *testing.T) {
	ts, _, sum, _ := archiveServer(t)
	cache := filepath.Join(t.TempDir(), "cache")
	// A wrong checksum: an error that says so, and nothing left in the cache.
	wrong := strings.Repeat("ab", 32)
	_, err := Resolve(context.Background(), Locator{Env: Env{Cache: cache}, URL: ts.URL + "/aclImdb_v1.tar.gz", SHA256: wrong})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), "--data PATH") {
		t.Fatalf("error %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(cache, "imdb"))
	if len(ents) != 0 {
		t.Fatalf("cache holds %v after a failed download", ents)
	}
	// 404: names the URL.
	_, err = Resolve(context.Background(), Locator{Env: Env{Cache: cache}, URL: ts.URL + "/gone.tar.gz", SHA256: sum})
	if err == nil || !strings.Contains(err.Error(), ts.URL+"/gone.tar.gz") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %v", err)
	}
	// Cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, Locator{Env: Env{Cache: cache}, URL: ts.URL + "/aclImdb_v1.tar.gz", SHA256: sum}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

func TestCacheDir(t *testing.T) {
	if d, err := CacheDir(Env{Cache: "/x/y"}); err != nil || d != "/x/y" {
		t.Fatal(d, err)
	}
	d, err := CacheDir(Env{})
	if err == nil && !strings.HasSuffix(d, "sentibench") {
		t.Fatal(d)
	}
	env := EnvFrom(func(k string) string { return map[string]string{"SENTIBENCH_DATA": "d", "SENTIBENCH_CACHE": "c"}[k] })
	if env != (Env{Data: "d", Cache: "c"}) {
		t.Fatal(env)
	}
}
