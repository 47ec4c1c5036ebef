//go:build sentibench_cuda

package gpu

/*
#cgo LDFLAGS: -lcublas
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64
#include <stdint.h>
#include <cublas_v2.h>

// The few cuBLAS calls the package makes. Device pointers travel as integers.
static int sbCreate(uintptr_t *h) {
	cublasHandle_t x;
	cublasStatus_t s = cublasCreate(&x);
	*h = (uintptr_t)x;
	return (int)s;
}
static int sbDestroy(uintptr_t h) { return (int)cublasDestroy((cublasHandle_t)h); }
static int sbSetStream(uintptr_t h, uintptr_t s) { return (int)cublasSetStream((cublasHandle_t)h, (cudaStream_t)s); }
static int sbSetWorkspace(uintptr_t h, uintptr_t p, size_t n) { return (int)cublasSetWorkspace((cublasHandle_t)h, (void *)p, n); }

// Column-major C = alpha op(A) op(B) + beta C, count matrices strided apart (count 1: plain GEMM).
static int sbGemm(uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
                  uintptr_t a, int lda, long long sa, uintptr_t b, int ldb, long long sb,
                  float beta, uintptr_t c, int ldc, long long sc, int count) {
	cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (count == 1)
		return (int)cublasSgemm((cublasHandle_t)h, oa, ob, m, n, k, &alpha, (const float *)a, lda,
		                        (const float *)b, ldb, &beta, (float *)c, ldc);
	return (int)cublasSgemmStridedBatched((cublasHandle_t)h, oa, ob, m, n, k, &alpha, (const float *)a, lda, sa,
	                                      (const float *)b, ldb, sb, &beta, (float *)c, ldc, sc, count);
}
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sentibench/sentibench/internal/cu"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// kernelImage is kernels.cu compiled by scripts/build-kernels.sh (`make kernels`).
//
//go:embed kernels.fatbin
var kernelImage string

// blasWorkspace is the cuBLAS workspace taken from the pool (NVIDIA's advice for Hopper).
const blasWorkspace = 32 << 20

// Device is one CUDA device: its primary context, the stream every step runs on, a cuBLAS
// handle, the kernels, the memory pool and a pinned host buffer for uploads and downloads.
//
// The driver binds a context to an OS thread, Go goroutines move between threads: every method
// that calls the driver locks its goroutine to its thread and makes the context current first
// (enter). A Device serves one goroutine at a time (the profiler's calls excepted).
type Device struct {
	ordinal int
	name    string
	dev     cu.Device
	ctx     cu.CUContext
	stream  cu.Stream
	blas    C.uintptr_t
	mod     cu.Module
	fn      map[string]cu.Function
	mem     *Pool
	work    uintptr // cuBLAS workspace
	argp    []unsafe.Pointer

	pinned    unsafe.Pointer // page-locked staging buffer
	pinnedLen int64
	events    [3]cu.Event // a step's start, end of forward, end
}

// driverAlloc is the pool's allocator on the device.
type driverAlloc struct{}

func (driverAlloc) alloc(n int64) (uintptr, error) {
	p, err := cu.MemAlloc(n)
	if errors.Is(err, cu.OutOfMemory) {
		return 0, fmt.Errorf("%w (%v)", errOutOfMemory, err)
	}
	return uintptr(p), err
}

func (driverAlloc) free(p uintptr) error { return cu.MemFree(cu.DevicePtr(p)) }

// Open initialises the driver and opens device ordinal (0 for the first GPU).
func Open(ordinal int) (d *Device, err error) {
	if err := cu.Init(); err != nil {
		return nil, fmt.Errorf("gpu: no usable CUDA driver or GPU (cuInit: %v)", err)
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("gpu: counting CUDA devices: %v", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("gpu: CUDA device %d does not exist (%d devices)", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d: %v", ordinal, err)
	}
	d = &Device{ordinal: ordinal, dev: dev, fn: map[string]cu.Function{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d: context: %v", ordinal, err)
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d: context: %v", ordinal, err)
	}
	name, _ := dev.Name()
	major, _ := dev.Attribute(cu.ComputeCapabilityMajor)
	minor, _ := dev.Attribute(cu.ComputeCapabilityMinor)
	total, _ := dev.TotalMem()
	d.name = fmt.Sprintf("cuda:%d (%s, sm_%d%d, %.0f GiB, driver %d)", ordinal, name, major, minor, float64(total)/(1<<30), cu.Version())
	if major < 8 {
		return nil, fmt.Errorf("gpu: %s: sentibench's kernels need compute capability 8.0 or newer", d.name)
	}
	if d.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return nil, fmt.Errorf("gpu: %s: stream: %v", d.name, err)
	}
	for i := range d.events {
		if d.events[i], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
			return nil, fmt.Errorf("gpu: %s: event: %v", d.name, err)
		}
	}
	if d.mod, err = cu.LoadData(kernelImage); err != nil {
		return nil, fmt.Errorf("gpu: %s: loading the kernels: %v", d.name, err)
	}
	sigs, err := kernelSignatures(kernelSource)
	if err != nil {
		return nil, err
	}
	for k := range sigs {
		f, err := d.mod.Function(k)
		if err != nil {
			return nil, fmt.Errorf("gpu: %s: kernel %s: %v", d.name, k, err)
		}
		d.fn[k] = f
	}
	d.mem = newPool(driverAlloc{})
	if s := C.sbCreate(&d.blas); s != 0 {
		d.blas = 0
		return nil, fmt.Errorf("gpu: %s: cuBLAS: status %d", d.name, int(s))
	}
	if s := C.sbSetStream(d.blas, C.uintptr_t(uintptr(unsafe.Pointer(d.stream.C())))); s != 0 {
		return nil, fmt.Errorf("gpu: %s: cuBLAS stream: status %d", d.name, int(s))
	}
	if d.work, err = d.mem.alloc(blasWorkspace); err != nil {
		return nil, err
	}
	if s := C.sbSetWorkspace(d.blas, C.uintptr_t(d.work), blasWorkspace); s != 0 {
		return nil, fmt.Errorf("gpu: %s: cuBLAS workspace: status %d", d.name, int(s))
	}
	return d, nil
}

// Name describes the device, e.g. "cuda:0 (NVIDIA H100 80GB HBM3, sm_90, 79 GiB, driver 13000)".
func (d *Device) Name() string { return d.name }

// Pool is the device's memory pool.
func (d *Device) Pool() *Pool { return d.mem }

// enter locks the goroutine to its thread and makes the device's context current; call the
// returned function when done.
func (d *Device) enter() func() {
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		panic(fmt.Sprintf("gpu: making the context current: %v", err)) // a context that worked stops working: a driver fault
	}
	return runtime.UnlockOSThread
}

// Close releases the device (everything allocated from it must be freed first).
func (d *Device) Close() error {
	if d == nil || d.ctx == (cu.CUContext{}) {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("gpu: closing %s: %v", d.name, err)
	}
	return d.close()
}

func (d *Device) close() error {
	var errs []error
	if d.stream != (cu.Stream{}) {
		errs = append(errs, d.stream.Synchronize())
	}
	if d.blas != 0 {
		if s := C.sbDestroy(d.blas); s != 0 {
			errs = append(errs, fmt.Errorf("cuBLAS status %d", int(s)))
		}
		d.blas = 0
	}
	if d.mem != nil {
		if d.work != 0 {
			errs = append(errs, d.mem.free(d.work))
			d.work = 0
		}
		errs = append(errs, d.mem.Release())
	}
	if d.pinned != nil {
		errs = append(errs, cu.MemFreeHost(d.pinned))
		d.pinned, d.pinnedLen = nil, 0
	}
	if d.mod != (cu.Module{}) {
		errs = append(errs, d.mod.Unload())
	}
	for i := range d.events {
		if d.events[i] != (cu.Event{}) {
			errs = append(errs, cu.DestroyEvent(&d.events[i]))
		}
	}
	if d.stream != (cu.Stream{}) {
		errs = append(errs, d.stream.Destroy())
	}
	errs = append(errs, d.dev.ReleasePrimaryCtx())
	d.ctx = cu.CUContext{}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gpu: closing %s: %w", d.name, err)
	}
	return nil
}

// ResetPeak implements profile.DeviceMemory: the pool's high-water mark restarts from what it
// holds now.
func (d *Device) ResetPeak() { d.mem.ResetPeak() }

// PeakBytes implements profile.DeviceMemory: the most the pool handed out since ResetPeak.
func (d *Device) PeakBytes() int64 { return d.mem.PeakBytes() }

// Info implements profile.DeviceMemory: the driver's free and total memory of the device.
func (d *Device) Info() (free, total int64, err error) {
	defer d.enter()()
	return cu.MemInfo()
}

// staging returns the pinned host buffer, at least n bytes long.
func (d *Device) staging(n int64) (unsafe.Pointer, error) {
	if n <= d.pinnedLen {
		return d.pinned, nil
	}
	// Work queued earlier may still read the old buffer.
	if err := d.stream.Synchronize(); err != nil {
		return nil, fmt.Errorf("gpu: %v", err)
	}
	if d.pinned != nil {
		if err := cu.MemFreeHost(d.pinned); err != nil {
			return nil, fmt.Errorf("gpu: freeing pinned memory: %v", err)
		}
		d.pinned, d.pinnedLen = nil, 0
	}
	size := max(sizeClass(n), 1<<20)
	p, err := cu.MemAllocHost(size)
	if err != nil {
		return nil, fmt.Errorf("gpu: allocating %d bytes of pinned memory: %v", size, err)
	}
	d.pinned, d.pinnedLen = p, size
	return p, nil
}

// ---------------------------------------------------------------------------- backend

func (d *Device) pool() *Pool { return d.mem }

func (d *Device) memset32(p uintptr, n int64, v uint32) error {
	if err := cu.MemsetD32Async(cu.DevicePtr(p), uint(v), n, d.stream); err != nil {
		return fmt.Errorf("gpu: memset: %v", err)
	}
	return nil
}

func (d *Device) copyDD(dst, src uintptr, n int64) error {
	if err := cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), n, d.stream); err != nil {
		return fmt.Errorf("gpu: device copy: %v", err)
	}
	return nil
}

func (d *Device) upload(dst uintptr, src [][]byte) error {
	var n int64
	for _, s := range src {
		n += int64(len(s))
	}
	p, err := d.staging(n)
	if err != nil {
		return err
	}
	host := unsafe.Slice((*byte)(p), n)
	o := 0
	for _, s := range src {
		o += copy(host[o:], s)
	}
	if err := cu.MemcpyHtoDAsync(cu.DevicePtr(dst), p, n, d.stream); err != nil {
		return fmt.Errorf("gpu: upload: %v", err)
	}
	return nil
}

func (d *Device) download(parts []part) error {
	var n int64
	for _, pt := range parts {
		n += int64(len(pt.bytes()))
	}
	p, err := d.staging(n)
	if err != nil {
		return err
	}
	var o int64
	for _, pt := range parts {
		b := int64(len(pt.bytes()))
		if err := cu.MemcpyDtoHAsync(unsafe.Add(p, o), cu.DevicePtr(pt.src), b, d.stream); err != nil {
			return fmt.Errorf("gpu: download: %v", err)
		}
		o += b
	}
	if err := d.stream.Synchronize(); err != nil {
		return fmt.Errorf("gpu: %v", err)
	}
	host := unsafe.Slice((*byte)(p), n)
	o = 0
	for _, pt := range parts {
		o += int64(copy(pt.bytes(), host[o:]))
	}
	return nil
}

// write copies from Go memory: the driver stages a pageable source before it returns.
func (d *Device) write(dst uintptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if err := cu.MemcpyHtoDAsync(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(len(src)), d.stream); err != nil {
		return fmt.Errorf("gpu: upload: %v", err)
	}
	return d.stream.Synchronize()
}

// read copies into Go memory: a copy to pageable memory returns once it is done.
func (d *Device) read(dst []byte, src uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(len(dst)), d.stream); err != nil {
		return fmt.Errorf("gpu: download: %v", err)
	}
	return d.stream.Synchronize()
}

func (d *Device) gemm(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64,
	beta float32, c uintptr, ldc int, sc int64, count int) error {
	s := C.sbGemm(d.blas, b2i(tA), b2i(tB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(a), C.int(lda), C.longlong(sa), C.uintptr_t(b), C.int(ldb), C.longlong(sb),
		C.float(beta), C.uintptr_t(c), C.int(ldc), C.longlong(sc), C.int(count))
	if s != 0 {
		return fmt.Errorf("gpu: cuBLAS SGEMM %dx%dx%d (x%d): status %d", m, n, k, count, int(s))
	}
	return nil
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (d *Device) launch(name string, gx, gy int, args []uint64) error {
	f, ok := d.fn[name]
	if !ok {
		return fmt.Errorf("gpu: kernel %s is not loaded", name)
	}
	// cu's Launch reads 8 bytes through each pointer and copies them to C memory.
	d.argp = d.argp[:0]
	for i := range args {
		d.argp = append(d.argp, unsafe.Pointer(&args[i]))
	}
	if err := f.Launch(gx, gy, 1, blockSize, 1, 1, 0, d.stream, d.argp); err != nil {
		return fmt.Errorf("gpu: kernel %s: %v", name, err)
	}
	return nil
}

func (d *Device) record(i int) error {
	if err := d.events[i].Record(d.stream); err != nil {
		return fmt.Errorf("gpu: event: %v", err)
	}
	return nil
}

func (d *Device) elapsed(i, j int) (float64, error) {
	ms, err := d.events[i].Elapsed(d.events[j])
	if err != nil {
		return 0, fmt.Errorf("gpu: event: %v", err)
	}
	return ms, nil
}

// NewTrainer lays model m out on the device, for training with Adam as cfg says (Push copies
// the weights up).
func NewTrainer(d *Device, m nn.Model, cfg nn.AdamConfig) (*Trainer, error) {
	if d == nil {
		return nil, errors.New("gpu: no device")
	}
	return newTrainer(d, m, cfg)
}

// NewEncoder copies encoder m's weights to the device (set m.Layers before).
func NewEncoder(d *Device, m *bert.Model) (*Encoder, error) {
	if d == nil {
		return nil, errors.New("gpu: no device")
	}
	return newEncoder(d, m)
}
