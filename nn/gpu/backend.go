package gpu

import (
	_ "embed"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unsafe"
)

// backend is what the step executor needs from a device: the CUDA device (cuda.go) or, in the
// tests, an emulator that runs kernels.cu's kernels as Go code over checked host memory (so that
// the executor's buffer sizes, strides, GEMM shapes and kernel arguments are tested without a
// GPU). Work is queued in order on one stream; download is the only call that waits for it.
type backend interface {
	// pool is the device memory allocator.
	pool() *Pool
	// enter makes the device usable from the calling goroutine until the returned func is called.
	enter() func()
	// memset32 sets n 4-byte words at p to v.
	memset32(p uintptr, n int64, v uint32) error
	// copyDD copies n bytes on the device.
	copyDD(dst, src uintptr, n int64) error
	// upload queues a copy of src to dst through page-locked memory; src may be reused at once.
	// At most one upload may be pending between two downloads.
	upload(dst uintptr, src [][]byte) error
	// download waits for the queued work and copies each part to the host.
	download(parts []part) error
	// write and read copy between host and device synchronously (checkpoints).
	write(dst uintptr, src []byte) error
	read(dst []byte, src uintptr) error
	// gemm is cuBLAS's column-major strided-batched SGEMM (count 1: plain SGEMM).
	gemm(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64,
		beta float32, c uintptr, ldc int, sc int64, count int) error
	// launch runs a kernel of kernels.cu on gx x gy blocks of blockSize threads; args holds one
	// 8-byte slot per C parameter (see queue.launch).
	launch(name string, gx, gy int, args []uint64) error
	// record marks event i (0..2) on the stream; elapsed is the milliseconds between two events
	// (after a download).
	record(i int) error
	elapsed(i, j int) (float64, error)
}

// part is one device-to-host copy of a download: src on the device, dst a []float32 or []float64.
type part struct {
	src uintptr
	dst any
}

func (p part) bytes() []byte {
	switch d := p.dst.(type) {
	case []float32:
		return f32bytes(d)
	case []float64:
		if len(d) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 8*len(d))
	}
	return nil
}

// f32bytes and i32bytes view a slice's memory as bytes.
func f32bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

func i32bytes(s []int32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

// ---------------------------------------------------------------------------- kernel signatures

//go:embed kernels.cu
var kernelSource string

// cParam is the C type of a kernel parameter: "ptr", "i64", "u64", "int", "unsigned", "float",
// "double".
type cParam string

// kernelSignatures parses the kernels' parameter lists out of kernels.cu, so that every launch
// is checked against the kernel's real signature (a mismatch is an error, not corrupt memory).
func kernelSignatures(src string) (map[string][]cParam, error) {
	dirParams := regexp.MustCompile(`#define DIR_PARAMS (.*)`).FindStringSubmatch(src)
	if dirParams == nil {
		return nil, fmt.Errorf("gpu: kernels.cu has no DIR_PARAMS")
	}
	re := regexp.MustCompile(`(?s)extern "C" __global__ void ([a-z0-9_]+)\((.*?)\)\s*\{`)
	sigs := map[string][]cParam{}
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		params := strings.ReplaceAll(m[2], "DIR_PARAMS", dirParams[1])
		var sig []cParam
		for _, p := range strings.Split(params, ",") {
			p = strings.TrimSpace(p)
			var k cParam
			switch {
			case strings.Contains(p, "*"):
				k = "ptr"
			case strings.HasPrefix(p, "i64 "):
				k = "i64"
			case strings.HasPrefix(p, "u64 "):
				k = "u64"
			case strings.HasPrefix(p, "int "):
				k = "int"
			case strings.HasPrefix(p, "unsigned "):
				k = "unsigned"
			case strings.HasPrefix(p, "float "):
				k = "float"
			case strings.HasPrefix(p, "double "):
				k = "double"
			default:
				return nil, fmt.Errorf("gpu: kernels.cu: kernel %s: parameter %q of an unknown type", m[1], p)
			}
			sig = append(sig, k)
		}
		sigs[m[1]] = sig
	}
	return sigs, nil
}

// ---------------------------------------------------------------------------- queue
//
// A queue collects the work of one step or update on a backend. Its methods do nothing after
// the first error, which err holds: the executor reads as a plain sequence of calls. The
// buffers it allocates go back to the pool at release.

type queue struct {
	be        backend
	sigs      map[string][]cParam
	err       error
	allocated []uintptr
	args      []uint64
	kinds     []cParam
}

func (q *queue) fail(err error) {
	if q.err == nil && err != nil {
		q.err = err
	}
}

// alloc takes n 4-byte words from the pool until release.
func (q *queue) alloc(n int64) uintptr {
	if q.err != nil {
		return 0
	}
	p, err := q.be.pool().alloc(4 * max(n, 1))
	if err != nil {
		q.fail(err)
		return 0
	}
	q.allocated = append(q.allocated, p)
	return p
}

// zeros is alloc with the words cleared.
func (q *queue) zeros(n int64) uintptr {
	p := q.alloc(n)
	q.fill(p, n, 0)
	return p
}

// fill sets n float32s at p to v.
func (q *queue) fill(p uintptr, n int64, v float32) {
	if q.err == nil && n > 0 {
		q.fail(q.be.memset32(p, n, math.Float32bits(v)))
	}
}

// copy copies n float32s on the device.
func (q *queue) copy(dst, src uintptr, n int64) {
	if q.err == nil && n > 0 {
		q.fail(q.be.copyDD(dst, src, 4*n))
	}
}

// release gives the queue's buffers back to the pool.
func (q *queue) release() {
	for _, p := range q.allocated {
		q.fail(q.be.pool().free(p))
	}
	q.allocated = q.allocated[:0]
}

// f32 is the address of 4-byte element i of the buffer at p.
func f32(p uintptr, i int64) uintptr { return p + uintptr(4*i) }

// dir is one direction's step as the cell kernels take it (struct Dir in kernels.cu): the step's
// first packed row and active sequences, the previous step's first row and the sequences
// continuing from it, and (backward) the rows receiving a recurrent gradient.
type dir struct{ row, n, prow, m, cont int }

// launch queues a kernel over gx x gy blocks. Arguments are uintptr (device pointers), int
// (C int), int64 (i64), uint64 (u64), uint32 (unsigned), float32, float64 (double), or dir
// (five C ints), checked against the kernel's parameters in kernels.cu. Each parameter gets an
// 8-byte slot; the driver reads the parameter's own size from the slot's start (little-endian).
func (q *queue) launch(name string, gx, gy int, args ...any) {
	if q.err != nil {
		return
	}
	sig, ok := q.sigs[name]
	if !ok {
		q.fail(fmt.Errorf("gpu: kernels.cu has no kernel %s", name))
		return
	}
	q.args, q.kinds = q.args[:0], q.kinds[:0]
	kinds := q.kinds
	for _, a := range args {
		switch v := a.(type) {
		case uintptr:
			q.args, kinds = append(q.args, uint64(v)), append(kinds, "ptr")
		case int:
			if v != int(int32(v)) {
				q.fail(fmt.Errorf("gpu: kernel %s: int argument %d overflows", name, v))
				return
			}
			q.args, kinds = append(q.args, uint64(uint32(int32(v)))), append(kinds, "int")
		case int64:
			q.args, kinds = append(q.args, uint64(v)), append(kinds, "i64")
		case uint64:
			q.args, kinds = append(q.args, v), append(kinds, "u64")
		case uint32:
			q.args, kinds = append(q.args, uint64(v)), append(kinds, "unsigned")
		case float32:
			q.args, kinds = append(q.args, uint64(math.Float32bits(v))), append(kinds, "float")
		case float64:
			q.args, kinds = append(q.args, math.Float64bits(v)), append(kinds, "double")
		case dir:
			for _, x := range [5]int{v.row, v.n, v.prow, v.m, v.cont} {
				q.args, kinds = append(q.args, uint64(uint32(int32(x)))), append(kinds, "int")
			}
		default:
			q.fail(fmt.Errorf("gpu: kernel %s: argument of type %T", name, a))
			return
		}
	}
	q.kinds = kinds
	if len(kinds) != len(sig) {
		q.fail(fmt.Errorf("gpu: kernel %s takes %d parameters, got %d", name, len(sig), len(kinds)))
		return
	}
	for i := range sig {
		if kinds[i] != sig[i] {
			q.fail(fmt.Errorf("gpu: kernel %s: parameter %d is %s, got %s", name, i, sig[i], kinds[i]))
			return
		}
	}
	q.fail(q.be.launch(name, gx, gy, q.args))
}

// gemm queues C = alpha op(A) op(B) + beta C for row-major matrices (op(A) m x k, op(B) k x n,
// C m x n, leading dimensions lda, ldb, ldc); count > 1 runs count products whose matrices lie
// sa, sb, sc floats apart (0: the same matrix for all).
func (q *queue) gemm(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64,
	beta float32, c uintptr, ldc int, sc int64, count int) {
	if q.err != nil || m == 0 || n == 0 || count == 0 {
		return
	}
	// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix is
	// its transpose in column-major: swap the operands and the sizes, keep the flags.
	q.fail(q.be.gemm(tB, tA, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc, sc, count))
}

// upload queues the copy of an upload's sections to dst.
func (q *queue) upload(dst uintptr, u *upload) {
	if q.err == nil && u.words() > 0 {
		q.fail(q.be.upload(dst, [][]byte{i32bytes(u.ints), f32bytes(u.floats)}))
	}
}

// download waits for the queued work and copies the parts to the host.
func (q *queue) download(parts ...part) {
	if q.err == nil {
		q.fail(q.be.download(parts))
	}
}

// record marks event i.
func (q *queue) record(i int) {
	if q.err == nil {
		q.fail(q.be.record(i))
	}
}
