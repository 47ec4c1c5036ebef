//go:build !cgo

package bert

// Without cgo, the element-wise kernels are the pure-Go ones of kernels.go.

func softmaxRows(s []float32, n int) { softmaxRowsGo(s, n) }

func geluErf(x []float32) { geluErfGo(x) }

func kernelsName() string { return "pure Go" }
