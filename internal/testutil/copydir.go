package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// CopyDir copies the files of a fixture directory (not its subdirectories, nor the names in
// skip) into a new temporary directory and returns it.
func CopyDir(t testing.TB, src string, skip ...string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || slices.Contains(skip, e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
