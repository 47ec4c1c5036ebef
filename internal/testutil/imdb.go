package testutil

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"
)

// IMDBReviews returns the first n reviews, in archive order (test/neg comes first), of the real
// IMDB archive in the shared folder (skipping the test when it is absent; see Shared).
func IMDBReviews(t testing.TB, n int) []string {
	t.Helper()
	path := Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []string
	for len(out) < n {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if strings.HasSuffix(h.Name, ".txt") && (strings.Contains(h.Name, "/pos/") || strings.Contains(h.Name, "/neg/")) {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}
