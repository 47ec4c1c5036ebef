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
	"os"
	"runtime"
	"time"
	"unsafe"
)

// MPIBuild says whether this binary was built with MPI (the tag sentibench_mpi).
const MPIBuild = true

// mpiComm is MPI_COMM_WORLD. MPI is initialised with MPI_THREAD_FUNNELED, and every MPI call
// runs on one goroutine locked to the thread that initialised MPI (the funnel, serveMPI): the
// methods send it their call and wait for its answer, so that any goroutine may call them (the
// trainer's reducer goroutine does, during the backward pass). The funnel runs the calls one
// at a time, in the order they come.
type mpiComm struct {
	rank, size int
	calls      chan<- mpiCall
}

// mpiCall is one MPI call for the funnel: run makes it and returns MPI's error code, which the
// funnel sends back on done.
type mpiCall struct {
	run  func() C.int
	done chan C.int
}

// do runs f on the funnel and returns its error code.
func (c *mpiComm) do(f func() C.int) C.int {
	done := make(chan C.int, 1)
	c.calls <- mpiCall{run: f, done: done}
	return <-done
}

// OpenComm initialises MPI and returns MPI_COMM_WORLD's Comm (one rank when the process was
// not started by mpirun) and the function that finalises MPI (after which the Comm must not be
// used). Call it once; the Comm may then be used from any goroutine.
func OpenComm() (Comm, func() error, error) {
	calls := make(chan mpiCall)
	started := make(chan error, 1)
	c := &mpiComm{calls: calls}
	go serveMPI(c, calls, started)
	if err := <-started; err != nil {
		return nil, nil, err
	}
	finalize := func() error {
		rc := c.do(func() C.int { return C.sb_finalize() })
		close(calls) // the funnel ends, and its thread with it
		if rc != 0 {
			return fmt.Errorf("train: MPI_Finalize failed (error %d)", int(rc))
		}
		return nil
	}
	return c, finalize, nil
}

// serveMPI is the funnel: it locks itself to its thread for good, initialises MPI there, sets
// c's rank and size and reports on started, then runs the calls that come until calls is
// closed.
func serveMPI(c *mpiComm, calls <-chan mpiCall, started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread ends with the funnel
	if rc := C.sb_init(); rc != 0 {
		started <- fmt.Errorf("train: MPI_Init_thread failed (error %d)", int(rc))
		return
	}
	var r, n C.int
	if rc := C.sb_rank(&r); rc != 0 {
		started <- fmt.Errorf("train: MPI_Comm_rank failed (error %d)", int(rc))
		return
	}
	if rc := C.sb_size(&n); rc != 0 {
		started <- fmt.Errorf("train: MPI_Comm_size failed (error %d)", int(rc))
		return
	}
	c.rank, c.size = int(r), int(n)
	started <- nil
	for call := range calls {
		call.done <- call.run()
	}
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

func (c *mpiComm) AllreduceSum(buf []float32) error {
	for len(buf) > 0 { // MPI counts are C ints
		n := min(len(buf), math.MaxInt32)
		chunk := buf[:n]
		if rc := c.do(func() C.int { return C.sb_allreduce_sum((*C.float)(unsafe.Pointer(&chunk[0])), C.int(n)) }); rc != 0 {
			return fmt.Errorf("train: MPI_Allreduce failed (error %d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) Broadcast(buf []float32, root int) error {
	for len(buf) > 0 {
		n := min(len(buf), math.MaxInt32)
		chunk := buf[:n]
		if rc := c.do(func() C.int { return C.sb_bcast((*C.float)(unsafe.Pointer(&chunk[0])), C.int(n), C.int(root)) }); rc != 0 {
			return fmt.Errorf("train: MPI_Bcast failed (error %d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) Barrier() error {
	if rc := c.do(func() C.int { return C.sb_barrier() }); rc != 0 {
		return fmt.Errorf("train: MPI_Barrier failed (error %d)", int(rc))
	}
	return nil
}

// abortWait is how long Abort waits for the funnel to take its MPI_Abort.
const abortWait = 5 * time.Second

// Abort calls MPI_Abort on the funnel. Should the funnel stay busy (in a collective operation
// that another rank will never join), it exits the process with code instead, which makes
// mpirun end the job as well.
func (c *mpiComm) Abort(code int) {
	call := mpiCall{run: func() C.int { C.sb_abort(C.int(code)); return 0 }, done: make(chan C.int, 1)}
	select {
	case c.calls <- call:
		<-call.done // MPI_Abort does not return
	case <-time.After(abortWait):
		fmt.Fprintf(os.Stderr, "sentibench: rank %d: MPI is busy in a collective operation; exiting with status %d instead of MPI_Abort\n", c.rank, code)
		os.Exit(code)
	}
}
