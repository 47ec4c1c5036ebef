// Package blas gives sentibench one float32/float64 BLAS for its matrix products.
//
// Three implementations exist, chosen once when Load is called:
//
//   - OpenBLAS, loaded at run time with dlopen (cgo builds only).
//   - Go: gonum's pure-Go BLAS with sentibench's own sgemm (package sgemm: Go assembly kernels
//     for AVX-512 or AVX2+FMA, chosen by the CPU's features), no cgo. It is what a
//     CGO_ENABLED=0 build, or a machine without OpenBLAS, uses. On a CPU with neither AVX2+FMA
//     nor AVX-512, or off amd64, its sgemm is gonum's.
//   - gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum), on request.
//
// The choice is made by Load's argument, which the CLI takes from --blas or $SENTIBENCH_BLAS:
//
//	""  or "auto"  Go on a CPU with AVX-512; elsewhere OpenBLAS if libopenblas.so.0 (or
//	               libopenblas.so) loads, else Go
//	"openblas"     OpenBLAS, and an error if it cannot be loaded
//	"go", "purego" Go, with the best kernel the CPU runs
//	"go-avx2"      Go with the AVX2 kernel even on an AVX-512 CPU (tests, benchmarks); an error
//	               if the CPU has no AVX2+FMA
//	"gonum"        gonum's pure-Go BLAS
//	"/path/to/libopenblas.so"  that library (any CBLAS with cblas_sgemm works)
//
// Nothing here is global: Load returns an Impl value, and callers pass it on (the nn package
// hands it to Gorgonia with gorgonia.Use, which is Gorgonia's own global).
package blas

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/sentibench/sentibench/internal/blas/sgemm"
)

// Impl is a full BLAS (gonum's interfaces; Gorgonia's BLAS interface is the same set) plus what the project
// needs to know about it.
type Impl interface {
	gblas.Float32
	gblas.Float64
	gblas.Complex64
	gblas.Complex128
	// Name says which library this is, e.g. "openblas 0.3.21 (Cooperlake, 2 threads)" or "gonum".
	Name() string
	// SetThreads sets the number of threads the library may use for one call (OpenBLAS);
	// the pure-Go BLAS ignores it.
	SetThreads(n int)
	// Threads reports the current thread setting (1 for gonum).
	Threads() int
}

// Gonum is the pure-Go BLAS. Its level-3 routines split large products over GOMAXPROCS goroutines.
type Gonum struct{ gonum.Implementation }

// Name implements Impl.
func (Gonum) Name() string { return "gonum (pure Go)" }

// SetThreads implements Impl; gonum has no thread setting.
func (Gonum) SetThreads(int) {}

// Threads implements Impl.
func (Gonum) Threads() int { return 1 }

// Go is gonum's pure-Go BLAS with sentibench's own sgemm (package sgemm) in place of gonum's.
// Its Sgemm splits a product over up to Threads goroutines. Make one with NewGo.
type Go struct {
	Gonum
	isa     sgemm.ISA
	threads atomic.Int64
}

// NewGo returns the Go BLAS with the kernel isa (sgemm.Detect() for the best this CPU runs;
// sgemm.None for gonum's sgemm) and GOMAXPROCS threads. It is an error to ask for a kernel
// the CPU does not run.
func NewGo(isa sgemm.ISA) (*Go, error) {
	if isa != sgemm.None && !sgemm.Supported(isa) {
		return nil, fmt.Errorf("blas: this CPU cannot run the %s sgemm kernel (it runs %s)", isa, sgemm.Detect())
	}
	g := &Go{isa: isa}
	g.threads.Store(int64(runtime.GOMAXPROCS(0)))
	return g, nil
}

// Name implements Impl, e.g. "go (avx512, 2 threads)".
func (g *Go) Name() string {
	kernel := g.isa.String()
	if g.isa == sgemm.None {
		kernel = "gonum sgemm"
	}
	return fmt.Sprintf("go (%s, %d threads)", kernel, g.Threads())
}

// SetThreads implements Impl: Sgemm uses up to n goroutines (at least 1).
func (g *Go) SetThreads(n int) { g.threads.Store(int64(max(n, 1))) }

// Threads implements Impl.
func (g *Go) Threads() int { return int(g.threads.Load()) }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C (row-major) with package sgemm's kernel, or
// gonum's Sgemm where the CPU runs none. It panics on bad arguments, as gonum does.
func (g *Go) Sgemm(tA, tB gblas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if g.isa == sgemm.None {
		g.Gonum.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemm.Sgemm(g.isa, g.Threads(), transposed(tA), transposed(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// transposed reads a gonum transpose flag (ConjTrans is Trans for real matrices).
func transposed(t gblas.Transpose) bool {
	switch t {
	case gblas.NoTrans:
		return false
	case gblas.Trans, gblas.ConjTrans:
		return true
	}
	panic("blas: illegal transpose")
}

func loadGo(isa sgemm.ISA) (Impl, error) {
	g, err := NewGo(isa)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Load returns the BLAS named by choice (see the package documentation).
func Load(choice string) (Impl, error) {
	switch c := strings.TrimSpace(choice); c {
	case "gonum":
		return Gonum{}, nil
	case "go", "purego":
		return loadGo(sgemm.Detect())
	case "go-avx2":
		return loadGo(sgemm.AVX2)
	case "", "auto":
		// On an AVX-512 CPU the Go sgemm measured at OpenBLAS 0.3.21's speed or faster (the
		// README's BLAS section), and OpenBLAS 0.3.21 misreads newer CPUs as Prescott (SSE3).
		if isa := sgemm.Detect(); isa == sgemm.AVX512 {
			return loadGo(isa)
		}
		if impl, err := loadOpenBLAS(""); err == nil {
			return impl, nil
		}
		return loadGo(sgemm.Detect())
	case "openblas":
		impl, err := loadOpenBLAS("")
		if err != nil {
			return nil, fmt.Errorf("blas: OpenBLAS was asked for but %w (install libopenblas0, or set SENTIBENCH_BLAS=go)", err)
		}
		return impl, nil
	default:
		impl, err := loadOpenBLAS(c)
		if err != nil {
			return nil, fmt.Errorf("blas: %w", err)
		}
		return impl, nil
	}
}
