package train

// The allreduce of a data-parallel step's gradients, in buckets that overlap the backward pass.
//
// The trainable parameters are grouped into buckets in the reverse of the model's order, up to
// bucketBytes each (a larger parameter alone), so that the last layers' parameters, whose
// gradients the backward pass computes first, fill the first buckets. During the backward pass
// the CPU engine announces each gradient as soon as it is final (nn.Runner.OnGrad); the rank
// copies it, weighted by its share of the global batch, into its bucket, and a bucket whose
// gradients are all in goes to a reducer goroutine, which sums it over the ranks
// (Comm.AllreduceSum) while the backward pass goes on. Buckets go in bucket order, the same on
// every rank (a complete bucket waits for those before it). After the backward pass the rank
// packs what was not announced (a rank with no review in the batch packs zeros; with gradient
// accumulation the micro-batches' gradients add up first, so everything is packed then), hands
// over the rest, then the step's figures, and waits for the reducer; the sums then go back
// into the parameters' gradients.

import (
	"fmt"
	"time"

	"github.com/sentibench/sentibench/nn"
)

// defaultBucketBytes is the size of a bucket of gradients: like PyTorch DDP's bucket_cap_mb,
// but smaller, so that the recipe's models (10 to 20 MB of gradients) get a few buckets each
// and a bucket rarely holds parameters of two layers (it would wait for the lower one).
const defaultBucketBytes = 2 << 20

// gradBucket is one bucket: its parameters' gradients, packed one after the other.
type gradBucket struct {
	params []*nn.Param
	offs   []int // where each parameter's gradient starts in buf
	buf    []float32
	packed []bool // this step
	left   int    // the parameters not packed yet this step
}

// gradReducer sums a rank's gradients with the other ranks' in buckets, one step at a time:
// begin, then announce (during the backward pass), then finish, or abandon after an error.
type gradReducer struct {
	comm     Comm
	buckets  []*gradBucket
	bucketOf map[*nn.Param]int
	at       map[*nn.Param]int // a parameter's index in its bucket

	// The step under way.
	n      int     // this rank's reviews in the batch (0: it packs zeros)
	weight float32 // n / the global batch's reviews
	next   int     // the next bucket to hand over
	handed []time.Time
	// announced counts the gradients announced so far; toCome[k] is the number of gradients
	// still to be announced when bucket k was handed over (-1: handed over after the backward
	// pass, by finish).
	announced int
	toCome    []int
	queue     chan []float32 // to the reducer goroutine; closed by finish or abandon
	done      chan reduceResult
}

// reduceResult is what the reducer goroutine reports once its queue is closed and empty: the
// time its allreduces took (the wait for the slowest rank included) and the first error.
type reduceResult struct {
	seconds float64
	err     error
}

// newGradReducer buckets params (in the model's order) for comm's ranks, up to bucketBytes a
// bucket.
func newGradReducer(comm Comm, params []*nn.Param, bucketBytes int) *gradReducer {
	r := &gradReducer{comm: comm, bucketOf: map[*nn.Param]int{}, at: map[*nn.Param]int{}}
	var b *gradBucket
	for i := len(params) - 1; i >= 0; i-- {
		p := params[i]
		if b == nil || len(b.buf) > 0 && 4*(len(b.buf)+len(p.Grad)) > bucketBytes {
			b = &gradBucket{}
			r.buckets = append(r.buckets, b)
		}
		r.bucketOf[p] = len(r.buckets) - 1
		r.at[p] = len(b.params)
		b.params = append(b.params, p)
		b.offs = append(b.offs, len(b.buf))
		b.buf = append(b.buf, make([]float32, len(p.Grad))...)
		b.packed = append(b.packed, false)
	}
	r.handed, r.toCome = make([]time.Time, len(r.buckets)), make([]int, len(r.buckets))
	return r
}

// bytes is the size of the buckets.
func (r *gradReducer) bytes() int64 {
	var n int64
	for _, b := range r.buckets {
		n += 4 * int64(len(b.buf))
	}
	return n
}

// begin starts a step in which this rank trains on n of the global batch's globalN reviews:
// the reducer goroutine waits for buckets.
func (r *gradReducer) begin(n, globalN int) {
	r.n, r.weight, r.next = n, float32(float64(n)/float64(globalN)), 0
	for _, b := range r.buckets {
		clear(b.packed)
		b.left = len(b.params)
	}
	clear(r.handed)
	r.announced = 0
	r.queue = make(chan []float32, len(r.buckets)+1) // never blocks the sender
	r.done = make(chan reduceResult, 1)
	go reduce(r.comm, r.queue, r.done)
}

// reduce sums every buffer of queue over the ranks, in turn, until queue is closed. After an
// error it goes on reading the queue but sends nothing more.
func reduce(comm Comm, queue <-chan []float32, done chan<- reduceResult) {
	var res reduceResult
	for buf := range queue {
		if res.err != nil {
			continue
		}
		began := time.Now()
		res.err = comm.AllreduceSum(buf)
		res.seconds += time.Since(began).Seconds()
	}
	done <- res
}

// announce packs p's gradient, which the backward pass has just computed, into its bucket,
// and hands over the buckets that are then complete (nn.Runner.OnGrad).
func (r *gradReducer) announce(p *nn.Param) {
	k, ok := r.bucketOf[p]
	if !ok {
		return // not a parameter that gets a gradient (none: nn announces trainable ones)
	}
	r.announced++
	r.pack(r.buckets[k], r.at[p])
	r.handOver()
}

// pack copies parameter i of bucket b's gradient into the bucket, weighted (zeros when this
// rank has no review: its gradients are stale).
func (r *gradReducer) pack(b *gradBucket, i int) {
	if b.packed[i] {
		return
	}
	p := b.params[i]
	dst := b.buf[b.offs[i] : b.offs[i]+len(p.Grad)]
	if r.n == 0 {
		clear(dst)
	} else {
		for j, g := range p.Grad {
			dst[j] = g * r.weight
		}
	}
	b.packed[i] = true
	b.left--
}

// handOver sends the complete buckets, in order, to the reducer goroutine.
func (r *gradReducer) handOver() {
	for r.next < len(r.buckets) && r.buckets[r.next].left == 0 {
		r.handed[r.next] = time.Now()
		r.toCome[r.next] = r.announced // so far: finish turns it into those still to come
		r.queue <- r.buckets[r.next].buf
		r.next++
	}
}

// finish ends the step after the backward pass: it packs and hands over the gradients not
// announced, then slots (the step's figures, summed in the same round), waits for every
// allreduce and copies the sums back into the parameters' gradients. It returns the time the
// allreduces took.
func (r *gradReducer) finish(slots []float32) (float64, error) {
	during := r.next // the buckets handed over during the backward pass
	for _, b := range r.buckets {
		for i := range b.params {
			r.pack(b, i)
		}
	}
	r.handOver()
	for k := range r.toCome {
		if k < during {
			r.toCome[k] = r.announced - r.toCome[k]
		} else {
			r.toCome[k] = -1
		}
	}
	r.queue <- slots
	close(r.queue)
	res := <-r.done
	r.queue = nil
	if res.err != nil {
		return res.seconds, fmt.Errorf("train: allreduce of the gradients: %w", res.err)
	}
	for _, b := range r.buckets {
		for i, p := range b.params {
			copy(p.Grad, b.buf[b.offs[i]:b.offs[i]+len(p.Grad)])
		}
	}
	return res.seconds, nil
}

// abandon ends a step that failed before finish: it waits for the buckets already handed over
// (the other ranks hand them over too) and hands over nothing more. The caller then aborts the
// job. Without a step under way it does nothing.
func (r *gradReducer) abandon() {
	if r.queue == nil {
		return
	}
	close(r.queue)
	<-r.done
	r.queue = nil
}
