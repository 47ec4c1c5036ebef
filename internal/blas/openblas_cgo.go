//go:build cgo

package blas

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double*, int, const double*, int, double, double*, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*setthreads_fn)(int);
typedef int (*getthreads_fn)(void);
typedef char* (*getstr_fn)(void);

typedef struct {
	void *handle;
	sgemm_fn sgemm;
	dgemm_fn dgemm;
	sgemv_fn sgemv;
	setthreads_fn set_threads;
	getthreads_fn get_threads;
	getstr_fn corename;
	getstr_fn config;
} cblas_lib;

static const char* sb_open(const char *name, cblas_lib *lib) {
	lib->handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) return dlerror();
	lib->sgemm = (sgemm_fn)dlsym(lib->handle, "cblas_sgemm");
	lib->dgemm = (dgemm_fn)dlsym(lib->handle, "cblas_dgemm");
	lib->sgemv = (sgemv_fn)dlsym(lib->handle, "cblas_sgemv");
	if (!lib->sgemm || !lib->dgemm || !lib->sgemv) return "the library has no cblas_sgemm/cblas_dgemm/cblas_sgemv";
	lib->set_threads = (setthreads_fn)dlsym(lib->handle, "openblas_set_num_threads");
	lib->get_threads = (getthreads_fn)dlsym(lib->handle, "openblas_get_num_threads");
	lib->corename = (getstr_fn)dlsym(lib->handle, "openblas_get_corename");
	lib->config = (getstr_fn)dlsym(lib->handle, "openblas_get_config");
	return 0;
}

// The float32 products run with subnormals flushed to zero on the calling thread (MXCSR's FTZ
// and DAZ bits on x86-64, restored after): see flushSubnormals in sgemm/asm/gen.go for why.
// OpenBLAS's own worker threads, when it uses more than one, keep their default mode.
#if defined(__x86_64__)
#include <xmmintrin.h>
static unsigned int sb_flush_begin(void) { unsigned int old = _mm_getcsr(); _mm_setcsr(old | 0x8040); return old; }
static void sb_flush_end(unsigned int old) { _mm_setcsr(old); }
#else
static unsigned int sb_flush_begin(void) { return 0; }
static void sb_flush_end(unsigned int old) { (void)old; }
#endif

static void sb_sgemm(cblas_lib *l, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
	unsigned int mode = sb_flush_begin();
	l->sgemm(101, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
	sb_flush_end(mode);
}
static void sb_dgemm(cblas_lib *l, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                     const double *b, int ldb, double beta, double *c, int ldc) {
	l->dgemm(101, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void sb_sgemv(cblas_lib *l, int ta, int m, int n, float alpha, const float *a, int lda,
                     const float *x, int incx, float beta, float *y, int incy) {
	unsigned int mode = sb_flush_begin();
	l->sgemv(101, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
	sb_flush_end(mode);
}
static void sb_set_threads(cblas_lib *l, int n) { if (l->set_threads) l->set_threads(n); }
static int sb_get_threads(cblas_lib *l) { return l->get_threads ? l->get_threads() : 1; }
static const char* sb_corename(cblas_lib *l) { return l->corename ? l->corename() : ""; }
static const char* sb_config(cblas_lib *l) { return l->config ? l->config() : ""; }
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"

	gblas "gonum.org/v1/gonum/blas"
)

// OpenBLAS calls a CBLAS library loaded at run time for sgemm, dgemm and sgemv (the products
// that matter), and gonum for every other routine.
type OpenBLAS struct {
	Gonum
	lib  *C.cblas_lib
	path string
}

func loadOpenBLAS(path string) (Impl, error) {
	names := []string{path}
	if path == "" {
		names = []string{"libopenblas.so.0", "libopenblas.so", "libopenblas64_.so.0"}
	}
	var lib C.cblas_lib
	var errs []string
	for _, name := range names {
		cname := C.CString(name)
		msg := C.sb_open(cname, &lib)
		C.free(unsafe.Pointer(cname))
		if msg == nil {
			p := (*C.cblas_lib)(C.malloc(C.size_t(unsafe.Sizeof(lib))))
			*p = lib
			return &OpenBLAS{lib: p, path: name}, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %s", name, C.GoString(msg)))
	}
	return nil, fmt.Errorf("cannot load a CBLAS library (%s)", strings.Join(errs, "; "))
}

// Name implements Impl.
func (o *OpenBLAS) Name() string {
	core := C.GoString(C.sb_corename(o.lib))
	cfg := strings.Fields(C.GoString(C.sb_config(o.lib)))
	ver := o.path
	if len(cfg) > 1 && strings.EqualFold(cfg[0], "OpenBLAS") {
		ver = "openblas " + cfg[1]
	}
	if core != "" {
		return fmt.Sprintf("%s (%s, %d threads)", ver, core, o.Threads())
	}
	return fmt.Sprintf("%s (%d threads)", ver, o.Threads())
}

// SetThreads implements Impl.
func (o *OpenBLAS) SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	C.sb_set_threads(o.lib, C.int(n))
}

// Threads implements Impl.
func (o *OpenBLAS) Threads() int { return int(C.sb_get_threads(o.lib)) }

func cTrans(t gblas.Transpose) C.int {
	if t == gblas.NoTrans {
		return 111
	}
	return 112
}

// Sgemm computes C = alpha * op(A) * op(B) + beta * C (row-major), as gonum's Sgemm does.
func (o *OpenBLAS) Sgemm(tA, tB gblas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || len(a) == 0 || len(b) == 0 {
		o.Gonum.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	C.sb_sgemm(o.lib, cTrans(tA), cTrans(tB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}

// Dgemm is Sgemm in float64.
func (o *OpenBLAS) Dgemm(tA, tB gblas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || len(a) == 0 || len(b) == 0 {
		o.Gonum.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	checkGemm(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	C.sb_dgemm(o.lib, cTrans(tA), cTrans(tB), C.int(m), C.int(n), C.int(k), C.double(alpha),
		(*C.double)(unsafe.Pointer(&a[0])), C.int(lda), (*C.double)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.int(ldc))
}

// Sgemv computes y = alpha * op(A) * x + beta * y (row-major).
func (o *OpenBLAS) Sgemv(tA gblas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	if m == 0 || n == 0 || incX <= 0 || incY <= 0 {
		o.Gonum.Sgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	lx, ly := n, m
	if tA != gblas.NoTrans {
		lx, ly = m, n
	}
	if lda < max(1, n) || len(a) < lda*(m-1)+n || len(x) < 1+(lx-1)*incX || len(y) < 1+(ly-1)*incY {
		panic("blas: sgemv: slice too short for the given sizes")
	}
	C.sb_sgemv(o.lib, cTrans(tA), C.int(m), C.int(n), C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.int(lda),
		(*C.float)(unsafe.Pointer(&x[0])), C.int(incX), C.float(beta), (*C.float)(unsafe.Pointer(&y[0])), C.int(incY))
}

// checkGemm panics, as gonum does, when a slice is too short for the product: a C library would
// read or write past it instead.
func checkGemm(tA, tB gblas.Transpose, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	ar, ac := m, k
	if tA != gblas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != gblas.NoTrans {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n) ||
		la < lda*(ar-1)+ac || lb < ldb*(br-1)+bc || lc < ldc*(m-1)+n {
		panic("blas: gemm: slice too short or bad leading dimension for the given sizes")
	}
}
