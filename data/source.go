package data

import (
	"context"
	_ "embed" // the bundled sample
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/sentibench/sentibench/internal/fetch"
	"github.com/sentibench/sentibench/internal/progress"
)

// The official IMDB archive (Maas et al., 2011), downloaded on first use when no local copy is
// given.
const (
	IMDBURL    = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
	IMDBSHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
	// IMDBFile is the archive's name in the cache directory (under imdb/).
	IMDBFile = "aclImdb_v1.tar.gz"
)

// SampleName is the data path that selects the embedded sample.
const SampleName = "sample"

// sampleArchive is a small sample of real IMDB reviews in the official archive layout, made
// by scripts/mksample from the labelled archive (see data/sample/README.md). Read only.
//
//go:embed sample/imdb_sample.tar.gz
var sampleArchive []byte

// SampleArchive returns the embedded sample archive (a .tar.gz in the aclImdb layout). The
// bytes are shared: do not modify them.
func SampleArchive() []byte { return sampleArchive }

// Env holds the environment variables that locate the data: $SENTIBENCH_DATA (a local copy)
// and $SENTIBENCH_CACHE (the cache directory). The command line reads them (EnvFrom) and
// passes them in; nothing here reads the environment itself.
type Env struct {
	Data  string
	Cache string
}

// EnvFrom reads the Env variables with getenv (os.Getenv in the command).
func EnvFrom(getenv func(string) string) Env {
	return Env{Data: getenv("SENTIBENCH_DATA"), Cache: getenv("SENTIBENCH_CACHE")}
}

// CacheDir returns sentibench's cache directory: $SENTIBENCH_CACHE when set, else
// sentibench/ under the user's cache directory (os.UserCacheDir: $XDG_CACHE_HOME or
// ~/.cache on Linux).
func CacheDir(env Env) (string, error) {
	if env.Cache != "" {
		return env.Cache, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set SENTIBENCH_CACHE): %w", err)
	}
	return filepath.Join(dir, "sentibench"), nil
}

// Locator says where to look for the data, and how to download it.
type Locator struct {
	// Path is the command line's --data (empty when not given).
	Path string
	// Env holds $SENTIBENCH_DATA and $SENTIBENCH_CACHE.
	Env Env
	// NoDownload makes Resolve fail instead of downloading when there is no local copy.
	NoDownload bool
	// URL and SHA256 override the official archive's (tests serve their own).
	URL, SHA256 string
	// Client is the HTTP client for the download (default http.DefaultClient).
	Client *http.Client
	// Progress, when not nil, receives the download's progress; ProgressMode picks its form.
	Progress     io.Writer
	ProgressMode progress.Mode
}

// Resolve returns the data path to load, from the first of: the --data path (Path), then
// $SENTIBENCH_DATA, then the cached download, then a fresh download of the official archive into
// the cache (verified by its SHA-256; see Fetch). "sample" stays "sample" (the embedded sample).
// A path that does not exist is an error naming where it came from.
func Resolve(ctx context.Context, l Locator) (string, error) {
	for _, c := range []struct{ path, from string }{{l.Path, "--data"}, {l.Env.Data, "$SENTIBENCH_DATA"}} {
		if c.path == "" {
			continue
		}
		if c.path == SampleName {
			return c.path, nil
		}
		if _, err := os.Stat(c.path); err != nil {
			return "", fmt.Errorf("data %s (from %s): %w", c.path, c.from, unwrapPathError(err))
		}
		return c.path, nil
	}
	dest, err := CachedArchive(l.Env)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	if l.NoDownload {
		return "", fmt.Errorf("no data: give --data PATH (or \"sample\"), set SENTIBENCH_DATA, or download the official archive into %s (sentibench data fetch)", dest)
	}
	return Fetch(ctx, l)
}

// CachedArchive returns where the downloaded official archive lives in the cache.
func CachedArchive(env Env) (string, error) {
	dir, err := CacheDir(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "imdb", IMDBFile), nil
}

// Fetch downloads the official archive into the cache unless it is there already, and returns
// its path. The download resumes a partial one, is verified by SHA-256, and appears under its
// final name only once verified.
func Fetch(ctx context.Context, l Locator) (string, error) {
	dest, err := CachedArchive(l.Env)
	if err != nil {
		return "", err
	}
	url, sum := l.URL, l.SHA256
	if url == "" {
		url, sum = IMDBURL, IMDBSHA256
	}
	path, err := fetch.File(ctx, fetch.Request{
		URL: url, Dest: dest, SHA256: sum, Client: l.Client, Retries: 3,
		Progress: l.Progress, ProgressMode: l.ProgressMode, Label: "download " + IMDBFile,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return "", err
		}
		return "", fmt.Errorf("%w\n(or give a local copy of the archive with --data PATH or SENTIBENCH_DATA)", err)
	}
	return path, nil
}
