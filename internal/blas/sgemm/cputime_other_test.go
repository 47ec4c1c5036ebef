//go:build !unix

package sgemm

// cpuSeconds is not measured here: the benchmarks report wall-clock figures only.
func cpuSeconds() float64 { return 0 }
