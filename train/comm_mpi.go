//go:build sentibench_mpi

package train

// The MPI Comm: cgo against the system's MPI library (OpenMPI's libmpi from Debian's
// libopenmpi-dev; pkg-config package ompi-c). Built with the tag sentibench_mpi (make mpi).

/*
#cgo pkg-config: ompi-c
#include <mpi.h>

static int sb_init(void) {
	int provided;
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
}
static int sb_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int sb_size(int *n) { return MPI_Comm_size(MPI_COMM_WORLD, n); }
static int sb_allreduce_sum(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int sb_bcast(float *buf, int n, int root) { return MPI_Bcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD); }
static int sb_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static void sb_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int sb_finalize(void) { return MPI_Finalize(); }
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// MPIBuild says whether this binary was built with MPI (the tag sentibench_mpi).
const MPIBuild = true

// mpiComm is MPI_COMM_WORLD. MPI is initialised with MPI_THREAD_FUNNELED: every call comes
// from the goroutine that called OpenComm, which stays locked to its thread.
type mpiComm struct{ rank, size int }

// OpenComm initialises MPI and returns MPI_COMM_WORLD's Comm (one rank when the process was
// not started by mpirun) and the function that finalises MPI. Call it once, from the goroutine
// that will train: it locks that goroutine to its thread.
func OpenComm() (Comm, func() error, error) {
	runtime.LockOSThread()
	if rc := C.sb_init(); rc != 0 {
		return nil, nil, fmt.Errorf("train: MPI_Init_thread failed (error %d)", int(rc))
	}
	var r, n C.int
	if rc := C.sb_rank(&r); rc != 0 {
		return nil, nil, fmt.Errorf("train: MPI_Comm_rank failed (error %d)", int(rc))
	}
	if rc := C.sb_size(&n); rc != 0 {
		return nil, nil, fmt.Errorf("train: MPI_Comm_size failed (error %d)", int(rc))
	}
	finalize := func() error {
		if rc := C.sb_finalize(); rc != 0 {
			return fmt.Errorf("train: MPI_Finalize failed (error %d)", int(rc))
		}
		return nil
	}
	return &mpiComm{rank: int(r), size: int(n)}, finalize, nil
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

func (c *mpiComm) AllreduceSum(buf []float32) error {
	for len(buf) > 0 { // MPI counts are C ints
		n := min(len(buf), math.MaxInt32)
		if rc := C.sb_allreduce_sum((*C.float)(unsafe.Pointer(&buf[0])), C.int(n)); rc != 0 {
			return fmt.Errorf("train: MPI_Allreduce failed (error %d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) Broadcast(buf []float32, root int) error {
	for len(buf) > 0 {
		n := min(len(buf), math.MaxInt32)
		if rc := C.sb_bcast((*C.float)(unsafe.Pointer(&buf[0])), C.int(n), C.int(root)); rc != 0 {
			return fmt.Errorf("train: MPI_Bcast failed (error %d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) Barrier() error {
	if rc := C.sb_barrier(); rc != 0 {
		return fmt.Errorf("train: MPI_Barrier failed (error %d)", int(rc))
	}
	return nil
}

func (c *mpiComm) Abort(code int) { C.sb_abort(C.int(code)) }
