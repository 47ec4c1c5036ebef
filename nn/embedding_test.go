package nn

import (
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

func TestEmbeddingGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const V, E, B, T = 6, 3, 3, 4
	ids := []int32{2, 3, 2, 1, 0, 5, 1, 1, 4, 1, 1, 1} // id 1 is <pad>
	for _, timeMajor := range []bool{false, true} {
		e := NewEmbedding("embedding.", V, E, 1)
		var weights []float64
		gradCase{
			build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
				weights = randn(r, V*E, 1)
				w := input64(g, "w", weights, V, E)
				out, err := e.Lookup(w, ids, B, T, RowOrder(timeMajor))
				return out, G.Nodes{w}, err
			},
			// The <pad> row's gradient is zero by definition (padding_idx), not the derivative.
			skip: func(_, elem int) bool { return elem/E == 1 },
		}.check(t)
		// Its analytic gradient is zero, and the forward pass still reads it.
		g := G.NewGraph()
		w := input64(g, "w", weights, V, E)
		out, err := e.Lookup(w, ids, B, T, RowOrder(timeMajor))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := G.Sum(out)
		grads, err := G.Grad(s, w)
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		dw := grads[0].Value().Data().([]float64)
		for j := E; j < 2*E; j++ {
			if dw[j] != 0 {
				t.Fatalf("pad row gradient %v, want 0", dw[E:2*E])
			}
		}
		o := out.Value().Data().([]float64)
		row := 1 // sequence 0, step 1: id 3
		if timeMajor {
			row = 1 * B
		}
		if o[row*E] != weights[3*E] {
			t.Fatalf("timeMajor=%v: output row %d = %v, want row 3 of the table", timeMajor, row, o[row*E:(row+1)*E])
		}
	}
}

func TestEmbeddingRejectsBadIDs(t *testing.T) {
	e := NewEmbedding("embedding.", 5, 2, 1)
	g := G.NewGraph()
	if _, err := e.Forward(g, []int32{0, 1, 5, 2}, 2, 2, BatchMajor); err == nil || !strings.Contains(err.Error(), "id 5") {
		t.Fatalf("id outside the vocabulary: err = %v", err)
	}
	if _, err := e.Forward(g, []int32{0, 1, 2}, 2, 2, BatchMajor); err == nil {
		t.Fatal("3 ids for a 2x2 batch: no error")
	}
}

func TestEmbeddingInitAndFreeze(t *testing.T) {
	e := NewEmbedding("embedding.", 50, 4, 1)
	e.Init(NewRNG(3))
	if !allZero(e.Weight.Data()[4:8]) || allZero(e.Weight.Data()[8:12]) {
		t.Fatal("Init: the pad row must be zero and the others not")
	}
	e.Freeze()
	if !e.Weight.Frozen || e.Weight.Grad != nil {
		t.Fatal("Freeze did not freeze")
	}
	if err := e.SetWeights(make([]float32, 10), 5, 2); err == nil {
		t.Fatal("SetWeights with the wrong shape: no error")
	}
	m := make([]float32, 200)
	for i := range m {
		m[i] = float32(i)
	}
	if err := e.SetWeights(m, 50, 4); err != nil {
		t.Fatal(err)
	}
	if !allZero(e.Weight.Data()[4:8]) || e.Weight.Data()[9] != 9 {
		t.Fatal("SetWeights: wrong rows")
	}
}

func TestLoadGloVe(t *testing.T) {
	dir := t.TempDir()
	vocab := []string{"<unk>", "<pad>", "good", "bad", "movie", "zzz"}
	text := "good 1 2 3\nmovie 0.5 -0.5 1e-1\n<pad> 9 9 9\nthe 7 7 7\ngood 4 4 4\n"
	path := filepath.Join(dir, "vec.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	gzPath := filepath.Join(dir, "vec.txt.gz")
	f, _ := os.Create(gzPath)
	zw := gzip.NewWriter(f)
	zw.Write([]byte("6 3\n" + text)) // with a word2vec header line
	zw.Close()
	f.Close()
	for _, p := range []string{path, gzPath} {
		e := NewEmbedding("embedding.", len(vocab), 3, 1)
		rep, err := e.LoadGloVe(p, vocab)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Vectors != 5 || rep.Found != 2 || rep.Missing != 3 {
			t.Fatalf("%s: report %+v, want 5 vectors, 2 found, 3 missing", p, rep)
		}
		w := e.Weight.Data()
		want := map[int][]float32{1: {0, 0, 0}, 2: {1, 2, 3}, 4: {0.5, -0.5, 0.1}, 5: {0, 0, 0}}
		for id, row := range want {
			for j, x := range row {
				if w[id*3+j] != x {
					t.Fatalf("%s: row %d = %v, want %v", p, id, w[id*3:id*3+3], row)
				}
			}
		}
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("good 1 2 3\nbad 1 x 3\n"), 0o644)
	e := NewEmbedding("embedding.", len(vocab), 3, 1)
	if _, err := e.LoadGloVe(bad, vocab); err == nil || !strings.Contains(err.Error(), "bad.txt:2") {
		t.Fatalf("bad number: err = %v, want one naming bad.txt:2", err)
	}
	os.WriteFile(bad, []byte("good 1 2 3\nbad 1 2\n"), 0o644)
	if _, err := e.LoadGloVe(bad, vocab); err == nil || !strings.Contains(err.Error(), "bad.txt:2") {
		t.Fatalf("short line: err = %v, want one naming bad.txt:2", err)
	}
	for _, v := range []string{"NaN", "-Inf", "inf"} {
		os.WriteFile(bad, []byte("good 1 2 3\nbad 1 "+v+" 3\n"), 0o644)
		if _, err := e.LoadGloVe(bad, vocab); err == nil || !strings.Contains(err.Error(), "bad.txt:2") || !strings.Contains(err.Error(), "not a finite number") {
			t.Fatalf("%s: err = %v, want one naming bad.txt:2", v, err)
		}
	}
	if _, err := e.LoadGloVe(filepath.Join(dir, "none.txt"), vocab); err == nil {
		t.Fatal("missing file: no error")
	}
	if _, err := e.LoadGloVe(path, vocab[:3]); err == nil {
		t.Fatal("vocabulary of the wrong size: no error")
	}
}
