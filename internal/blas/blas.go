// Package blas gives sentibench one float32/float64 BLAS for its matrix products.
//
// Two implementations exist, chosen once when Load is called:
//
//   - OpenBLAS, loaded at run time with dlopen (cgo builds only). It is the fast path:
//     4-5x gonum's pure-Go sgemm on the project's 2-core reference machine.
//   - gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum), always available: it is used when
//     OpenBLAS cannot be loaded, when the binary was built with CGO_ENABLED=0, or on request.
//
// The choice is made by Load's argument, which the CLI takes from $SENTIBENCH_BLAS:
//
//	""  or "auto"  OpenBLAS if libopenblas.so.0 (or libopenblas.so) loads, else gonum
//	"openblas"     OpenBLAS, and an error if it cannot be loaded
//	"gonum"        the pure-Go BLAS
//	"/path/to/libopenblas.so"  that library (any CBLAS with cblas_sgemm works)
//
// Nothing here is global: Load returns an Impl value, and callers pass it on (the nn package
// hands it to Gorgonia with gorgonia.Use, which is Gorgonia's own global).
package blas

import (
	"fmt"
	"strings"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
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

// Load returns the BLAS named by choice (see the package documentation).
func Load(choice string) (Impl, error) {
	switch c := strings.TrimSpace(choice); c {
	case "gonum", "go", "purego":
		return Gonum{}, nil
	case "", "auto":
		if impl, err := loadOpenBLAS(""); err == nil {
			return impl, nil
		}
		return Gonum{}, nil
	case "openblas":
		impl, err := loadOpenBLAS("")
		if err != nil {
			return nil, fmt.Errorf("blas: OpenBLAS was asked for but %w (install libopenblas0, or set SENTIBENCH_BLAS=gonum)", err)
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
