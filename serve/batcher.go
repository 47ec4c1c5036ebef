package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sentibench/sentibench/train"
)

// job is one request's texts on their way through the batcher. The batcher sets results or
// err and then closes done; the handler reads them only after done is closed.
type job struct {
	ctx     context.Context
	texts   []string
	results []train.Classification
	err     error
	done    chan struct{}
}

// errStopped answers the jobs still queued when the batcher stops.
var errStopped = errors.New("the server is shutting down")

// batcher is the one goroutine that calls the model. It takes a request off the queue and
// gathers the requests that were already on their way at that moment (pending counts them:
// handlers that have started but whose job the batcher has not taken yet), waiting at most
// wait for them, until the batch holds maxBatch texts; then it runs the whole batch in one call
// of the model. Requests that start later go to the next batch, so under a steady stream a
// batch does not wait for the stream: while the model runs, the next batch piles up in the
// queue. A lone request is run at once.
type batcher struct {
	model    Model
	queue    chan *job
	stop     chan struct{} // closed to stop the loop
	stopped  chan struct{} // closed when the loop has returned
	pending  *atomic.Int64
	maxBatch int
	wait     time.Duration
	metrics  *metrics
	log      *slog.Logger
}

// loop runs until stop is closed, then answers every job left in the queue with errStopped.
func (b *batcher) loop() {
	defer close(b.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var next *job // a job taken off the queue that did not fit the last batch
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-b.queue:
				b.pending.Add(-1)
			case <-b.stop:
				b.drain()
				return
			}
		}
		batch := []*job{first}
		n := len(first.texts)
		// The requests already on their way; later ones wait for the next batch.
		if expect := b.pending.Load(); n < b.maxBatch && expect > 0 {
			timer.Reset(b.wait)
		collect:
			for n < b.maxBatch && expect > 0 && b.pending.Load() > 0 {
				select {
				case j := <-b.queue:
					b.pending.Add(-1)
					expect--
					if n+len(j.texts) > b.maxBatch {
						next = j
						break collect
					}
					batch = append(batch, j)
					n += len(j.texts)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		b.run(batch)
	}
}

// drain answers the queued jobs after a stop.
func (b *batcher) drain() {
	for {
		select {
		case j := <-b.queue:
			b.pending.Add(-1)
			j.err = errStopped
			close(j.done)
		default:
			return
		}
	}
}

// run classifies a batch of jobs and answers each. Jobs whose request has gone (deadline
// passed, client left) are dropped first. If the model fails on a batch of several jobs, each
// job is retried alone, so that one text the model cannot take does not fail its neighbours.
func (b *batcher) run(jobs []*job) {
	live := jobs[:0]
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			close(j.done)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	var texts []string
	if len(live) == 1 {
		texts = live[0].texts
	} else {
		for _, j := range live {
			texts = append(texts, j.texts...)
		}
	}
	results, err := b.classify(texts)
	if err != nil {
		b.log.Warn("the model failed on a batch", "requests", len(live), "texts", len(texts), "error", err.Error())
	}
	if err != nil && len(live) > 1 {
		for _, j := range live {
			b.run([]*job{j})
		}
		return
	}
	for _, j := range live {
		if err != nil {
			j.err = err
		} else {
			j.results, results = results[:len(j.texts):len(j.texts)], results[len(j.texts):]
		}
		close(j.done)
	}
}

// classify calls the model in chunks of at most maxBatch texts (a request may hold more), and
// turns a panic of the model into an error: the batcher must outlive a bad batch.
func (b *batcher) classify(texts []string) ([]train.Classification, error) {
	out := make([]train.Classification, 0, len(texts))
	for start := 0; start < len(texts); start += b.maxBatch {
		chunk := texts[start:min(len(texts), start+b.maxBatch)]
		t0 := time.Now()
		results, err := b.call(chunk)
		if err != nil {
			b.metrics.countError(errModel)
			return nil, fmt.Errorf("model %s: %w", b.model.Name(), err)
		}
		b.metrics.observeBatch(len(chunk), time.Since(t0))
		out = append(out, results...)
	}
	return out, nil
}

func (b *batcher) call(texts []string) (results []train.Classification, err error) {
	defer func() {
		if r := recover(); r != nil {
			results, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	results, err = b.model.Classify(texts)
	if err == nil && len(results) != len(texts) {
		err = fmt.Errorf("%d classifications for %d texts", len(results), len(texts))
	}
	k := len(b.model.Classes())
	for i := 0; err == nil && i < len(results); i++ {
		if c := results[i]; len(c.Probabilities) != k || c.Class < 0 || c.Class >= k {
			err = fmt.Errorf("text %d: class %d and %d probabilities for a model of %d classes", i, c.Class, len(c.Probabilities), k)
		}
	}
	return results, err
}
