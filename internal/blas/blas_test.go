package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	gblas "gonum.org/v1/gonum/blas"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// TestOpenBLASMatchesGonum checks every transpose combination of sgemm and sgemv against the
// pure-Go BLAS, with leading dimensions larger than the rows.
func TestOpenBLASMatchesGonum(t *testing.T) {
	ob, err := Load("openblas")
	if err != nil {
		t.Skipf("OpenBLAS not available here: %v", err)
	}
	var ref Gonum
	r := rand.New(rand.NewPCG(1, 2))
	m, n, k := 37, 29, 53
	for _, tA := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
		for _, tB := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
			ar, ac := m, k
			if tA == gblas.Trans {
				ar, ac = k, m
			}
			br, bc := k, n
			if tB == gblas.Trans {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+3, bc+1, n+2
			a, b := randSlice(r, ar*lda), randSlice(r, br*ldb)
			c1 := randSlice(r, m*ldc)
			c2 := append([]float32(nil), c1...)
			ob.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c1, ldc)
			ref.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c2, ldc)
			for i := range c1 {
				if math.Abs(float64(c1[i]-c2[i])) > 1e-4 {
					t.Fatalf("sgemm %v %v: element %d: openblas %g, gonum %g", tA, tB, i, c1[i], c2[i])
				}
			}
		}
		x, y1 := randSlice(r, max(m, n)), randSlice(r, max(m, n))
		y2 := append([]float32(nil), y1...)
		a := randSlice(r, m*n)
		ob.Sgemv(tA, m, n, 1.5, a, n, x, 1, 0.5, y1, 1)
		ref.Sgemv(tA, m, n, 1.5, a, n, x, 1, 0.5, y2, 1)
		for i := range y1 {
			if math.Abs(float64(y1[i]-y2[i])) > 1e-4 {
				t.Fatalf("sgemv %v: element %d: openblas %g, gonum %g", tA, i, y1[i], y2[i])
			}
		}
	}
	if !strings.Contains(strings.ToLower(ob.Name()), "openblas") && !strings.Contains(ob.Name(), ".so") {
		t.Errorf("Name() = %q, want it to name the library", ob.Name())
	}
}

func TestLoadChoices(t *testing.T) {
	g, err := Load("gonum")
	if err != nil || g.Name() != "gonum (pure Go)" {
		t.Fatalf(`Load("gonum") = %v, %v`, g, err)
	}
	if _, err := Load("auto"); err != nil {
		t.Fatalf(`Load("auto") must always work, got %v`, err)
	}
	_, err = Load("/nonexistent/libnothing.so")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/libnothing.so") {
		t.Fatalf("Load of a missing library: error %v does not name the file", err)
	}
}

func TestShortSlicePanics(t *testing.T) {
	ob, err := Load("openblas")
	if err != nil {
		t.Skipf("OpenBLAS not available here: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("sgemm with a too-short C did not panic")
		}
	}()
	ob.Sgemm(gblas.NoTrans, gblas.NoTrans, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
}

// BenchmarkSgemm reports GFLOP/s of each BLAS at the ceiling shape and at the LSTM's shapes
// (input projection of a T=200, B=64 batch; one recurrent step).
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct{ m, n, k int }{{2048, 2048, 2048}, {12800, 1024, 100}, {64, 1024, 256}}
	for _, choice := range []string{"openblas", "gonum"} {
		impl, err := Load(choice)
		if err != nil {
			b.Logf("skip %s: %v", choice, err)
			continue
		}
		for _, s := range shapes {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", choice, s.m, s.n, s.k), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				a, bb, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					impl.Sgemm(gblas.NoTrans, gblas.NoTrans, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
