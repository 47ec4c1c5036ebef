package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	gblas "gonum.org/v1/gonum/blas"

	"github.com/sentibench/sentibench/internal/blas/sgemm"
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
	for _, choice := range []string{"go", "purego", " go "} {
		impl, err := Load(choice)
		if err != nil {
			t.Fatalf("Load(%q): %v", choice, err)
		}
		if _, ok := impl.(*Go); !ok || !strings.HasPrefix(impl.Name(), "go (") {
			t.Errorf("Load(%q) = %T named %q, want the Go BLAS", choice, impl, impl.Name())
		}
	}
	if sgemm.Supported(sgemm.AVX2) {
		impl, err := Load("go-avx2")
		if err != nil || !strings.Contains(impl.Name(), "avx2") {
			t.Errorf(`Load("go-avx2") = %v, %v; want the Go BLAS with the AVX2 kernel`, impl, err)
		}
	} else if _, err := Load("go-avx2"); err == nil || !strings.Contains(err.Error(), "avx2") {
		t.Errorf(`Load("go-avx2") on a CPU without AVX2: error %v, want one naming avx2`, err)
	}
	if _, err := Load("openblas"); err != nil || sgemm.Detect() == sgemm.AVX512 {
		// Without OpenBLAS, or with AVX-512, auto is the Go BLAS, not gonum.
		impl, err := Load("auto")
		if _, ok := impl.(*Go); err != nil || !ok {
			t.Errorf(`Load("auto") = %T, %v; want the Go BLAS (AVX-512: %v)`, impl, err, sgemm.Detect() == sgemm.AVX512)
		}
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

// TestGoSgemm checks the Go BLAS's Sgemm, with every kernel this CPU runs and with the
// fallback (gonum's sgemm), against gonum on every transpose combination, with leading
// dimensions larger than the rows, one and two threads, and beta 0 over a NaN-filled C.
func TestGoSgemm(t *testing.T) {
	isas := []sgemm.ISA{sgemm.None}
	for _, isa := range []sgemm.ISA{sgemm.AVX2, sgemm.AVX512} {
		if sgemm.Supported(isa) {
			isas = append(isas, isa)
		}
	}
	var ref Gonum
	r := rand.New(rand.NewPCG(3, 4))
	for _, isa := range isas {
		impl, err := NewGo(isa)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			impl.SetThreads(threads)
			for _, s := range [][3]int{{37, 29, 53}, {130, 70, 300}} {
				m, n, k := s[0], s[1], s[2]
				for _, tA := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
					for _, tB := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
						for _, beta := range []float32{0, 0.3} {
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
							if beta == 0 {
								for i := range c1 {
									c1[i] = float32(math.NaN())
								}
							}
							impl.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, beta, c1, ldc)
							ref.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, beta, c2, ldc)
							for i := 0; i < m; i++ {
								for j := 0; j < n; j++ {
									got, want := c1[i*ldc+j], c2[i*ldc+j]
									if !(math.Abs(float64(got-want)) <= 1e-4) {
										t.Fatalf("%s, %d×%d×%d %v %v beta %g: C[%d][%d] = %g, gonum %g", impl.Name(), m, n, k, tA, tB, beta, i, j, got, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// benchShape is one product of the benchmarks: C (m×n) = op(A) (m×k) × op(B) (k×n).
type benchShape struct {
	name           string
	m, n, k        int
	transA, transB bool
}

// benchShapes are the ceiling shape and the ops' products (the recipe's models: bi-LSTM with
// B=64, E=100, H=256, segments of about 2,048 rows; the GRU head over 384-wide features,
// H=256; the text CNN's im2col blocks of 512 windows against 100 filters of widths 3-5 over
// E=100).
var benchShapes = []benchShape{
	{"square", 2048, 2048, 2048, false, false},
	{"lstm-inproj", 2048, 1024, 100, false, false},    // segment rows × E times W_ih (E×4H)
	{"lstm-inproj-l2", 2048, 1024, 512, false, false}, // layer 2: input 2H
	{"lstm-recur", 64, 1024, 256, false, false},       // one step: B×H times W_hh (H×4H)
	{"lstm-dh", 64, 256, 1024, false, false},          // backward step: gates (B×4H) times W_hh (4H×H)
	{"lstm-dx", 2048, 100, 1024, false, false},        // input gradient: gates times W_ih (4H×E)
	{"lstm-dW", 1024, 100, 2048, true, false},         // weight gradient: gatesᵀ times inputs
	{"gru-inproj", 2048, 768, 384, false, false},      // segment rows × 384 times W_ih (384×3H)
	{"gru-recur", 64, 768, 256, false, false},         // one step: B×H times W_hh (H×3H)
	{"cnn-w3", 512, 100, 300, false, true},            // im2col block times filtersᵀ, width 3
	{"cnn-w5", 512, 100, 500, false, true},            // width 5
}

// BenchmarkSgemm reports GFLOP/s (wall clock) and GFLOP per CPU-second of each BLAS, with the threads of $SENTIBENCH_BENCH_THREADS
// (default 2), at benchShapes: OpenBLAS (when it loads), gonum, and the Go BLAS with each
// kernel this CPU runs.
func BenchmarkSgemm(b *testing.B) {
	threads := 2
	if s := os.Getenv("SENTIBENCH_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("SENTIBENCH_BENCH_THREADS=%q: want a positive integer", s)
		}
		threads = n
	}
	for _, choice := range []string{"openblas", "go", "go-avx2", "gonum"} {
		impl, err := Load(choice)
		if err != nil {
			b.Logf("skip %s: %v", choice, err)
			continue
		}
		impl.SetThreads(threads)
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("%s/%s-%dx%dx%d", choice, s.name, s.m, s.n, s.k), func(b *testing.B) {
				if choice == "gonum" && s.name == "square" && testing.Short() {
					b.Skip("gonum at 2048³ takes seconds per call")
				}
				r := rand.New(rand.NewPCG(1, 2))
				a, bb, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
				lda, ldb := s.k, s.n
				tA, tB := gblas.NoTrans, gblas.NoTrans
				if s.transA {
					lda, tA = s.m, gblas.Trans
				}
				if s.transB {
					ldb, tB = s.k, gblas.Trans
				}
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					impl.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				gflop := 2 * float64(s.m*s.n*s.k) * float64(b.N) / 1e9
				b.ReportMetric(gflop/b.Elapsed().Seconds(), "GFLOP/s")
				if cpu := cpuSeconds() - cpu0; cpu > 0 {
					// On a shared machine the wall clock counts other jobs' time; the CPU
					// time this process used does not (it does count a BLAS's spinning threads).
					b.ReportMetric(gflop/cpu, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// TestOpenBLASFlushesSubnormals checks that OpenBLAS's float32 products run with subnormals
// flushed to zero on the calling thread (as the Go kernels do: TestSubnormalsFlushed in package
// sgemm), so that a recurrent layer's decaying gradients do not take the CPU's slow path: every
// product of 1e-20 by 1e-20 underflows, and C must be exactly zero.
func TestOpenBLASFlushesSubnormals(t *testing.T) {
	ob, err := Load("openblas")
	if err != nil {
		t.Skipf("OpenBLAS not available here: %v", err)
	}
	defer ob.SetThreads(ob.Threads())
	ob.SetThreads(1) // OpenBLAS's own worker threads keep their default mode
	const n = 64
	a, b := make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = 1e-20, 1e-20
	}
	c := make([]float32, n*n)
	ob.Sgemm(gblas.NoTrans, gblas.NoTrans, n, n, n, 1, a, n, b, n, 0, c, n)
	y := make([]float32, n)
	ob.Sgemv(gblas.NoTrans, n, n, 1, a, n, b[:n], 1, 0, y, 1)
	for i, v := range append(c, y...) {
		if v != 0 {
			t.Fatalf("element %d = %g, want 0 (64 products of 1e-20 by 1e-20 flushed)", i, v)
		}
	}
}
