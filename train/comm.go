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

// JobError is an error that every rank of a data-parallel job returns at the same point (the
// ranks disagree at start-up, the job has more ranks than a batch has reviews, rank 0 could not
// resume the run): no rank is left waiting for another, so the job ends without an abort, each
// rank exiting with an error and rank 0 reporting it.
type JobError struct{ Err error }

func (e *JobError) Error() string { return e.Err.Error() }
func (e *JobError) Unwrap() error { return e.Err }

// IsJobError reports whether err is (or wraps) a JobError.
func IsJobError(err error) bool {
	var je *JobError
	return errors.As(err, &je)
}

// maxCommBytes bounds what broadcastBytes and gatherBytes carry: lengths travel as float32,
// exact up to 2^24.
const maxCommBytes = 1 << 24

// BroadcastBytes gives every rank root's b (the others' b is not read): its length, then its
// bytes, one a float32 (exact). It carries small things (settings, a trainer state), below
// 16 MiB.
func BroadcastBytes(c Comm, b []byte, root int) ([]byte, error) {
	n := []float32{float32(len(b))}
	if c.Rank() == root && len(b) >= maxCommBytes {
		return nil, fmt.Errorf("train: broadcast of %d bytes: at most %d", len(b), maxCommBytes-1)
	}
	if err := c.Broadcast(n, root); err != nil {
		return nil, err
	}
	buf := make([]float32, int(n[0]))
	if c.Rank() == root {
		for i, v := range b {
			buf[i] = float32(v)
		}
	}
	if err := c.Broadcast(buf, root); err != nil {
		return nil, err
	}
	out := make([]byte, len(buf))
	for i, v := range buf {
		out[i] = byte(v)
	}
	return out, nil
}

// gatherBytes gives every rank every rank's b, by rank. Each rank fills its own row of a
// buffer that the others leave zero, so the allreduce's sum is every row exactly.
func gatherBytes(c Comm, b []byte) ([][]byte, error) {
	if len(b) >= maxCommBytes {
		return nil, fmt.Errorf("train: gathering %d bytes: at most %d", len(b), maxCommBytes-1)
	}
	size, rank := c.Size(), c.Rank()
	lens := make([]float32, size)
	lens[rank] = float32(len(b))
	if err := c.AllreduceSum(lens); err != nil {
		return nil, err
	}
	width := 0
	for _, n := range lens {
		width = max(width, int(n))
	}
	buf := make([]float32, size*width)
	for i, v := range b {
		buf[rank*width+i] = float32(v)
	}
	if err := c.AllreduceSum(buf); err != nil {
		return nil, err
	}
	out := make([][]byte, size)
	for r := range out {
		out[r] = make([]byte, int(lens[r]))
		for i := range out[r] {
			out[r][i] = byte(buf[r*width+i])
		}
	}
	return out, nil
}
