package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// kernels are the ISAs this CPU runs; the tests run each of them.
func kernels(t testing.TB) []ISA {
	var out []ISA
	for _, isa := range []ISA{AVX512, AVX2} {
		if Supported(isa) {
			out = append(out, isa)
		}
	}
	if len(out) == 0 {
		t.Skip("no sgemm kernel runs on this CPU")
	}
	return out
}

// problem is one product with its operands laid out with a padding of each leading dimension
// (lda, ldb and ldc beyond the rows' length).
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

const sentinel = float32(-12345.5)

func newProblem(r *rand.Rand, transA, transB bool, m, n, k, padA, padB, padC int, alpha, beta float32) *problem {
	p := &problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	p.lda, p.ldb, p.ldc = max(colsA, 1)+padA, max(colsB, 1)+padB, max(n, 1)+padC
	p.a = randSlice(r, rowsA*p.lda)
	p.b = randSlice(r, rowsB*p.ldb)
	p.c = make([]float32, m*p.ldc)
	for i := range p.c {
		p.c[i] = sentinel // outside the m×n region of C this must survive
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if beta == 0 {
				p.c[i*p.ldc+j] = float32(math.NaN()) // must not leak: beta 0 does not read C
			} else {
				p.c[i*p.ldc+j] = r.Float32()*2 - 1
			}
		}
	}
	return p
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// check runs Sgemm with isa and threads and compares C with a float64 reference.
func (p *problem) check(t testing.TB, isa ISA, threads int) {
	t.Helper()
	c := append([]float32(nil), p.c...)
	Sgemm(isa, threads, p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	at := func(i, q int) float64 {
		if p.transA {
			return float64(p.a[q*p.lda+i])
		}
		return float64(p.a[i*p.lda+q])
	}
	bt := func(q, j int) float64 {
		if p.transB {
			return float64(p.b[j*p.ldb+q])
		}
		return float64(p.b[q*p.ldb+j])
	}
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc; j++ {
			got := c[i*p.ldc+j]
			if j >= p.n {
				if got != sentinel {
					t.Fatalf("%v threads %d %s: C[%d][%d] outside the %d×%d product was written: %g", isa, threads, p, i, j, p.m, p.n, got)
				}
				continue
			}
			var sum, mag float64
			for q := 0; q < p.k; q++ {
				sum += at(i, q) * bt(q, j)
				mag += math.Abs(at(i, q) * bt(q, j))
			}
			want := float64(p.alpha) * sum
			if p.beta != 0 {
				old := float64(p.c[i*p.ldc+j])
				want += float64(p.beta) * old
				mag = math.Abs(float64(p.alpha))*mag + math.Abs(float64(p.beta)*old)
			} else {
				mag *= math.Abs(float64(p.alpha))
			}
			tol := 4e-7*float64(p.k+2)*mag + 1e-6
			if diff := math.Abs(float64(got) - want); !(diff <= tol) {
				t.Fatalf("%v threads %d %s: C[%d][%d] = %g, want %g (|diff| %g > %g)", isa, threads, p, i, j, got, want, diff, tol)
			}
		}
	}
}

func (p *problem) String() string {
	return fmt.Sprintf("transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g",
		p.transA, p.transB, p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.alpha, p.beta)
}

// TestSgemmEdges runs every transpose, several alpha and beta, and the sizes at the edges of the
// register tiles (6, 12, 16, 32) and of the cache blocks (kc 256, mc 120 and 240), against a
// float64 reference.
func TestSgemmEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 1))
	sizes := []int{1, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65}
	scalars := [][2]float32{{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0}, {1.25, 0.75}}
	for _, isa := range kernels(t) {
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				for i, m := range sizes {
					for j, n := range sizes {
						k := sizes[(i+2*j)%len(sizes)]
						s := scalars[(i+j)%len(scalars)]
						p := newProblem(r, transA, transB, m, n, k, (i+j)%3, (i*j)%4, j%2, s[0], s[1])
						p.check(t, isa, 1+(i+j)%3)
					}
				}
			}
		}
	}
}

// TestSgemmBlocks straddles the cache blocks: k around kc (256) and twice it, m around mc
// (120, 240), n around NR multiples, with one and two goroutines.
func TestSgemmBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 2))
	shapes := [][3]int{
		{119, 33, 255}, {120, 32, 256}, {121, 31, 257}, {239, 65, 100}, {240, 64, 513},
		{241, 17, 300}, {250, 97, 511}, {37, 1, 1000}, {1, 300, 257}, {64, 1030, 64},
	}
	for _, isa := range kernels(t) {
		for i, s := range shapes {
			for _, threads := range []int{1, 2} {
				tr := []bool{false, true}
				p := newProblem(r, tr[i%2], tr[(i/2)%2], s[0], s[1], s[2], i%3, i%2, (i+1)%3, 0.75, []float32{0, 1, -0.5}[i%3])
				p.check(t, isa, threads)
			}
		}
	}
}

// TestSgemmZeroCases: k = 0 or alpha = 0 scale C by beta (zeroing it, unread, when beta is 0),
// and m or n = 0 touch nothing.
func TestSgemmZeroCases(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 3))
	for _, isa := range kernels(t) {
		for _, beta := range []float32{0, 1, 0.5} {
			newProblem(r, false, false, 5, 7, 0, 1, 1, 2, 1, beta).check(t, isa, 2)
			newProblem(r, true, false, 13, 40, 9, 1, 1, 2, 0, beta).check(t, isa, 2)
			newProblem(r, false, true, 0, 7, 3, 0, 0, 0, 1, beta).check(t, isa, 2)
			newProblem(r, false, true, 3, 0, 3, 0, 0, 0, 1, beta).check(t, isa, 2)
		}
	}
}

// TestSgemmBadArguments: gonum's panics for bad sizes, leading dimensions and short slices.
func TestSgemmBadArguments(t *testing.T) {
	isa := kernels(t)[0]
	s := make([]float32, 16)
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"m<0", func() { Sgemm(isa, 1, false, false, -1, 4, 4, 1, s, 4, s, 4, 0, s, 4) }, "blas: m < 0"},
		{"lda", func() { Sgemm(isa, 1, false, false, 4, 4, 4, 1, s, 3, s, 4, 0, s, 4) }, "blas: bad leading dimension of A"},
		{"ldb trans", func() { Sgemm(isa, 1, false, true, 4, 4, 5, 1, s, 5, s, 4, 0, s, 4) }, "blas: bad leading dimension of B"},
		{"short c", func() { Sgemm(isa, 1, false, false, 4, 4, 4, 1, s, 4, s, 4, 0, s[:15], 4) }, "blas: insufficient length of c"},
	} {
		func() {
			defer func() {
				if got := recover(); got != tc.want {
					t.Errorf("%s: panic %v, want %q", tc.name, got, tc.want)
				}
			}()
			tc.call()
		}()
	}
}

// FuzzSgemm checks arbitrary shapes, strides, transposes and scalars against the reference,
// for every kernel this CPU runs and one to three goroutines.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(1), uint8(1), uint16(1), uint8(0), uint8(0), false, false, float32(1), float32(0), uint64(1))
	f.Add(uint8(13), uint8(33), uint16(257), uint8(1), uint8(3), true, false, float32(0.5), float32(1), uint64(2))
	f.Add(uint8(65), uint8(17), uint16(7), uint8(2), uint8(0), false, true, float32(-1), float32(0.25), uint64(3))
	f.Add(uint8(241), uint8(64), uint16(300), uint8(0), uint8(1), true, true, float32(2), float32(0), uint64(4))
	f.Fuzz(func(t *testing.T, m, n uint8, k uint16, pad, threads uint8, transA, transB bool, alpha, beta float32, seed uint64) {
		if math.IsNaN(float64(alpha)) || math.IsInf(float64(alpha), 0) || math.Abs(float64(alpha)) > 1e3 ||
			math.IsNaN(float64(beta)) || math.IsInf(float64(beta), 0) || math.Abs(float64(beta)) > 1e3 {
			t.Skip("scalars out of the tested range")
		}
		k %= 600
		r := rand.New(rand.NewPCG(seed, 25))
		p := newProblem(r, transA, transB, int(m), int(n), int(k), int(pad%5), int(pad/5%5), int(pad/25%5), alpha, beta)
		for _, isa := range kernels(t) {
			p.check(t, isa, 1+int(threads%3))
		}
	})
}

// TestSgemmTileEdges covers every kernel and every partial tile: C as narrow as the ops'
// (read A in place, n ≤ 256) and wider (A packed), a last column panel of each width class
// (whole, 1, 4, 8, 9 and 15 columns past a multiple of 16: the AVX2 6x8 kernel and the masked
// last ymm of both AVX2 kernels; the AVX-512 16- and 32-column kernels), last row panels the
// kernels read in place or not, both layouts of A, and beta 0 (C unread) and not.
func TestSgemmTileEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 4))
	for _, isa := range kernels(t) {
		for _, base := range []int{32, 288} {
			for _, extra := range []int{0, 1, 4, 8, 9, 15} {
				for _, m := range []int{12, 13, 16, 17} {
					for _, transA := range []bool{false, true} {
						for _, beta := range []float32{0, 0.5} {
							n := base + extra
							p := newProblem(r, transA, extra%2 == 1, m, n, 9, extra%3, 1, m%3, 1.5, beta)
							p.check(t, isa, 1)
						}
					}
				}
			}
		}
	}
}
