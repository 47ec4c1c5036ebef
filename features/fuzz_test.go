package features

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// FuzzOpen opens a real cache of three reviews under an arbitrary meta.json and index.bin: an
// error that says what to delete, or a reader whose every review reads within the data file.
// Never a panic. `go test` runs the seeds; `go test -fuzz FuzzOpen ./features` searches.
func FuzzOpen(f *testing.F) {
	texts := testutil.IMDBReviews(f, 3)
	m := tinyBERT(f)
	dir, err := Build(context.Background(), texts, testOptions(m, f.TempDir()))
	if err != nil {
		f.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		f.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(meta, index)
	f.Add(meta, index[:len(index)-12])
	// word_pieces + 2^58 rows of 32 half floats: 2^64 more bytes, which int64 arithmetic wraps
	// back to the data file's size, with review 0 placed in rows that do not exist.
	var mt Meta
	if err := json.Unmarshal(meta, &mt); err != nil || mt.Dim != 32 {
		f.Fatalf("meta.json: %v (dim %d, want the tiny BERT's 32)", err, mt.Dim)
	}
	mt.WordPieces += 1 << 58
	wrapped, _ := json.Marshal(mt)
	far := slices.Clone(index)
	binary.LittleEndian.PutUint64(far[indexHeader:], uint64(mt.WordPieces-1000))
	f.Add(wrapped, far)
	f.Fuzz(func(t *testing.T, meta, index []byte) {
		if err := os.WriteFile(filepath.Join(dir, MetaFile), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, IndexFile), index, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the cache: %v", err)
			}
			return
		}
		defer r.Close()
		for i := range r.Len() {
			if _, err := r.Review(i, nil); err != nil {
				t.Fatalf("review %d of an open cache: %v", i, err)
			}
		}
	})
}
