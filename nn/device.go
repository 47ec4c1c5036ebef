package nn

import (
	"runtime"
	"strconv"

	G "gorgonia.org/gorgonia"

	"github.com/sentibench/sentibench/internal/blas"
)

// CPU is the host device: a BLAS for the matrix products and a number of worker goroutines for
// the fused ops' own parallel loops (the two directions of a bidirectional layer, the
// element-wise gate arithmetic over rows).
type CPU struct {
	BLAS    blas.Impl
	Workers int
}

// NewCPU returns the CPU device using impl for every matrix product, its own and Gorgonia's.
// workers <= 0 means GOMAXPROCS.
//
// Gorgonia keeps its BLAS in a package variable of its own: NewCPU sets it (gorgonia.Use), so
// the last CPU made decides which BLAS Gorgonia's light ops use.
func NewCPU(impl blas.Impl, workers int) *CPU {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	G.Use(impl)
	return &CPU{BLAS: impl, Workers: workers}
}

// Name describes the device, e.g. "cpu (openblas 0.3.21 (Cooperlake, 1 threads), 2 workers)".
func (c *CPU) Name() string {
	return "cpu (" + c.BLAS.Name() + ", " + strconv.Itoa(c.Workers) + " workers)"
}
