//go:build sentibench_cuda

package cu

// This file implements CUDA driver context management

//#include <cuda.h>
import "C"

// Init initialises the CUDA driver (cuInit). Call it once, before any other function of the
// package. It returns the driver's error (no driver, no device, ...) instead of exiting.
//
// sentibench: upstream calls cuInit in a package init() and exits the process when it fails,
// which makes every binary that links this package unusable on a machine without a GPU.
func Init() error {
	return result(C.cuInit(C.uint(0)))
}

// Version returns the version of the CUDA driver
func Version() int {
	var v C.int
	if err := result(C.cuDriverGetVersion(&v)); err != nil {
		return -1
	}
	return int(v)
}
