//go:build sentibench_cuda

package cu

// #include <cuda.h>
import "C"
import "unsafe"

// MemAllocHost allocates bytesize bytes of page-locked host memory (cuMemAllocHost), which the
// device reads and writes directly: copies from and to it can be asynchronous. Free it with
// MemFreeHost.
//
// sentibench: added to the vendored copy (upstream leaves the call unwrapped).
func MemAllocHost(bytesize int64) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := result(C.cuMemAllocHost(&p, C.size_t(bytesize)))
	return p, err
}
