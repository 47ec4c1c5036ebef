package sgemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkKernel is the micro-kernel alone on L1-resident panels (k = 256): the ceiling the
// blocking can reach on one core.
func BenchmarkKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const k = 256
	for _, isa := range []ISA{AVX512, AVX2} {
		if !Supported(isa) {
			continue
		}
		bl := blockingOf(isa)
		a, bb, c := randSlice(r, bl.mr*k), randSlice(r, bl.nr*k), make([]float32, bl.mr*bl.nr)
		b.Run(isa.String(), func(b *testing.B) {
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				if isa == AVX512 {
					kernel12(packedA, k, &a[0], 0, &bb[0], &c[0], bl.nr, 1, 1, 1, bl.mr, bl.nr)
				} else {
					kernel6(packedA, k, &a[0], 0, &bb[0], &c[0], bl.nr, 1, 1, 1, bl.mr, bl.nr)
				}
			}
			gflop := 2 * float64(bl.mr*bl.nr*k) * float64(b.N) / 1e9
			b.ReportMetric(gflop/b.Elapsed().Seconds(), "GFLOP/s")
			if cpu := cpuSeconds() - cpu0; cpu > 0 {
				b.ReportMetric(gflop/cpu, "GFLOP/cpu-s")
			}
		})
	}
}

// BenchmarkSgemm1 is Sgemm on one goroutine at a few of the ops' shapes (internal/blas's
// BenchmarkSgemm has them all, against OpenBLAS and gonum).
func BenchmarkSgemm1(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{2048, 1024, 100}, {64, 1024, 256}, {512, 100, 300}, {1024, 1024, 1024}} {
		m, n, k := s[0], s[1], s[2]
		a, bb, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
		for _, isa := range []ISA{AVX512, AVX2} {
			if !Supported(isa) {
				continue
			}
			b.Run(fmt.Sprintf("%s/%dx%dx%d", isa, m, n, k), func(b *testing.B) {
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					Sgemm(isa, 1, false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
				}
				gflop := 2 * float64(m*n*k) * float64(b.N) / 1e9
				b.ReportMetric(gflop/b.Elapsed().Seconds(), "GFLOP/s")
				if cpu := cpuSeconds() - cpu0; cpu > 0 {
					b.ReportMetric(gflop/cpu, "GFLOP/cpu-s")
				}
			})
		}
	}
}
