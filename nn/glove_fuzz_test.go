package nn

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadGloVe reads arbitrary bytes as a word-vector file: an error naming the file, or an
// embedding whose every value is finite and whose padding row is zero. `go test` runs the
// seeds; `go test -fuzz FuzzLoadGloVe ./nn` searches.
func FuzzLoadGloVe(f *testing.F) {
	f.Add([]byte("good 1 2 3\nmovie 0.5 -0.5 1e-1\n<pad> 9 9 9\nthe 7 7 7\ngood 4 4 4\n"))
	f.Add([]byte("6 3\ngood 1 2 3\n"))
	f.Add([]byte("new york 1 2 3\nbad 1e39 0 0\n"))
	f.Add([]byte("bad NaN 0 0\n"))
	vocab := []string{"<unk>", "<pad>", "good", "bad", "movie", "new york"}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "vectors.txt")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		e := NewEmbedding("embedding.", len(vocab), 3, 1)
		if _, err := e.LoadGloVe(p, vocab); err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		w := e.Weight.Data()
		for i, v := range w {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("weight %d is %v", i, v)
			}
		}
		for _, v := range w[3:6] {
			if v != 0 {
				t.Fatalf("the padding row is %v", w[3:6])
			}
		}
	})
}
