package train

import (
	"errors"
	"fmt"
	"sync"
)

// Comm connects the processes ("ranks") of a data-parallel run: each trains on its share of
// every global batch, and the ranks sum their gradients before the optimiser's step, so that
// every rank applies the same update. The zero Options use one rank (SingleComm), which
// changes nothing. The MPI build (tag sentibench_mpi) has one over MPI; LocalComm runs ranks
// as goroutines of one process.
//
// Every rank must call the collective operations in the same order with buffers of the same
// length; they return when every rank has called them.
type Comm interface {
	// Rank is this process's number, 0 to Size()-1; rank 0 writes the run directory.
	Rank() int
	// Size is the number of ranks.
	Size() int
	// AllreduceSum replaces buf on every rank by the element-wise sum of every rank's buf.
	AllreduceSum(buf []float32) error
	// Broadcast replaces buf on every rank by root's buf.
	Broadcast(buf []float32, root int) error
	// Barrier returns when every rank has called it.
	Barrier() error
	// Abort stops every rank of the job (after an error on one rank, which the others would
	// otherwise wait for in their next collective operation).
	Abort(code int)
}

// SingleComm is the one-rank Comm: its operations do nothing.
type SingleComm struct{}

func (SingleComm) Rank() int                      { return 0 }
func (SingleComm) Size() int                      { return 1 }
func (SingleComm) AllreduceSum([]float32) error   { return nil }
func (SingleComm) Broadcast([]float32, int) error { return nil }
func (SingleComm) Barrier() error                 { return nil }
func (SingleComm) Abort(int)                      {}

// ErrCommAborted is what a LocalComm's operations return after a rank called Abort.
var ErrCommAborted = errors.New("train: another rank aborted the job")

// LocalComm returns n Comms, ranks 0 to n-1, that talk through shared memory: one goroutine
// per rank runs a data-parallel run in one process (the tests use it to check the arithmetic
// of MPI's). Sums are taken in rank order, so every rank gets the same bits.
func LocalComm(n int) []Comm {
	g := &localGroup{n: n, bufs: make([][]float32, n)}
	g.cond = sync.NewCond(&g.mu)
	comms := make([]Comm, n)
	for r := range comms {
		comms[r] = &localComm{g: g, rank: r}
	}
	return comms
}

// localGroup is the shared state of LocalComm's ranks: a reusable rendezvous. Each operation
// has two phases: every rank deposits its buffer and waits for all (arrive), the last to
// arrive computes the result into every buffer; then every rank leaves (so that no buffer is
// reused before all are done).
type localGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	bufs    [][]float32
	arrived int
	round   uint64 // counts completed operations
	err     error  // the last operation's
	aborted bool
}

type localComm struct {
	g    *localGroup
	rank int
}

func (c *localComm) Rank() int { return c.rank }
func (c *localComm) Size() int { return c.g.n }

func (c *localComm) AllreduceSum(buf []float32) error {
	return c.g.collective(c.rank, buf, func(bufs [][]float32) error {
		for r := range bufs {
			if len(bufs[r]) != len(bufs[0]) {
				return fmt.Errorf("train: allreduce: rank %d has %d values, rank 0 has %d", r, len(bufs[r]), len(bufs[0]))
			}
		}
		sum := make([]float32, len(bufs[0]))
		for _, b := range bufs { // rank order: the same result everywhere
			for i, v := range b {
				sum[i] += v
			}
		}
		for _, b := range bufs {
			copy(b, sum)
		}
		return nil
	})
}

func (c *localComm) Broadcast(buf []float32, root int) error {
	return c.g.collective(c.rank, buf, func(bufs [][]float32) error {
		for r := range bufs {
			if len(bufs[r]) != len(bufs[root]) {
				return fmt.Errorf("train: broadcast: rank %d has %d values, rank %d has %d", r, len(bufs[r]), root, len(bufs[root]))
			}
		}
		for r, b := range bufs {
			if r != root {
				copy(b, bufs[root])
			}
		}
		return nil
	})
}

func (c *localComm) Barrier() error {
	return c.g.collective(c.rank, nil, func([][]float32) error { return nil })
}

func (c *localComm) Abort(int) {
	c.g.mu.Lock()
	c.g.aborted = true
	c.g.cond.Broadcast()
	c.g.mu.Unlock()
}

// collective deposits buf, waits for every rank, lets the last one run combine over all the
// buffers, and returns combine's error on every rank.
func (g *localGroup) collective(rank int, buf []float32, combine func([][]float32) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.aborted {
		return ErrCommAborted
	}
	round := g.round
	g.bufs[rank] = buf
	g.arrived++
	if g.arrived == g.n {
		g.err = combine(g.bufs)
		g.arrived = 0
		g.round++
		g.cond.Broadcast()
		return g.err
	}
	for g.round == round && !g.aborted {
		g.cond.Wait()
	}
	if g.round == round { // aborted before the operation completed
		return ErrCommAborted
	}
	return g.err
}
