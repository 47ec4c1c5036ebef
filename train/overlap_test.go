package train

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// TestGradBuckets: the buckets take the parameters in the reverse of the model's order, each
// once, up to the bucket size (a larger parameter alone).
func TestGradBuckets(t *testing.T) {
	params := []*nn.Param{nn.NewParam("a", 10), nn.NewParam("b", 300), nn.NewParam("c", 20), nn.NewParam("d", 30), nn.NewParam("e", 5)}
	r := newGradReducer(SingleComm{}, params, 4*60) // 60 float32s
	var got [][]string
	for _, b := range r.buckets {
		var names []string
		for _, p := range b.params {
			names = append(names, p.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"e", "d", "c"}, {"b"}, {"a"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buckets %v, want %v", got, want)
	}
	if n := r.bytes(); n != 4*365 {
		t.Errorf("%d bytes, want %d", n, 4*365)
	}
}

// TestAllreduceOverlapsBackward: on 2 ranks (LocalComm), the first bucket of a training step's
// gradients (the last layers') goes to the allreduce while the backward pass still has
// gradients to compute (those of the layers below: nn.TestRunnerOnGrad shows that a gradient
// is announced before the layers below run their backward pass), every bucket is handed over
// during the backward pass, and in the lstm the buckets of the second recurrent layer go
// before the first layer's gradients are computed. A step with gradient accumulation hands
// every bucket over after its backward passes.
func TestAllreduceOverlapsBackward(t *testing.T) {
	for _, tc := range []struct {
		model string
		accum int
	}{{"cnn", 0}, {"lstm", 0}, {"lstm", 2}} {
		t.Run(fmt.Sprintf("%s-accum-%d", tc.model, tc.accum), func(t *testing.T) {
			cfg := smallConfig(tc.model)
			cfg.GradAccum = tc.accum
			cfg, err := cfg.resolved()
			if err != nil {
				t.Fatal(err)
			}
			reducers := make([]*gradReducer, 2)
			errs := onRanks(2, func(r int, comm Comm) error {
				c := cfg
				c.RunDir = t.TempDir()
				tr, err := newTrainer(context.Background(), c, quietHooks(), Options{Comm: comm, bucketBytes: 4 << 10}, false)
				if err != nil {
					return err
				}
				defer tr.close()
				batch := data.BucketBatches(tr.ds.train, tr.ds.lengths, c.BatchSize, tr.ds.rng)[0]
				if _, _, _, err := tr.step(context.Background(), share(batch, r, 2), len(batch), newLabelLoss(tr.ds.outputs)); err != nil {
					return err
				}
				reducers[r] = tr.grads
				return nil
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for r, red := range reducers {
				if len(red.buckets) < 3 {
					t.Fatalf("rank %d: %d buckets; the test wants several", r, len(red.buckets))
				}
				if tc.accum > 1 {
					for k, n := range red.toCome {
						if n != -1 {
							t.Errorf("rank %d, accumulation: bucket %d handed over during the backward pass (%d gradients to come)", r, k, n)
						}
					}
					continue
				}
				if red.toCome[0] <= 0 || slices.Contains(red.toCome, -1) {
					t.Errorf("rank %d: gradients still to compute when each bucket was handed over: %v; want > 0 for the first, none after the backward pass (-1)", r, red.toCome)
				}
				if tc.model == "lstm" {
					lower := 0 // the gradients of the layers below the second recurrent layer
					for _, b := range red.buckets {
						for _, p := range b.params {
							if !strings.HasPrefix(p.Name, "fc.") && !strings.Contains(p.Name, "_l1") {
								lower++
							}
						}
					}
					for k, b := range red.buckets {
						if layerOne(b) && red.toCome[k] < lower {
							t.Errorf("rank %d: bucket %d (second layer) handed over with %d gradients to come, want %d (the first layer's and the embedding's)", r, k, red.toCome[k], lower)
						}
					}
				}
				t.Logf("rank %d: %d buckets, gradients to come at each hand-over: %v", r, len(red.buckets), red.toCome)
			}
		})
	}
}

// layerOne says whether a bucket holds only parameters of the fc layer and the second
// recurrent layer, and some of the latter.
func layerOne(b *gradBucket) bool {
	some := false
	for _, p := range b.params {
		switch {
		case strings.Contains(p.Name, "_l1"):
			some = true
		case !strings.HasPrefix(p.Name, "fc."):
			return false
		}
	}
	return some
}

// TestGradReducerAbandon: a rank whose step fails after handing over a bucket waits for that
// bucket's allreduce (which the other rank joins) and sends nothing more; after its abort the
// other rank's wait for the next bucket ends with ErrCommAborted, not a hang.
func TestGradReducerAbandon(t *testing.T) {
	errs := onRanks(2, func(r int, comm Comm) error {
		params := []*nn.Param{nn.NewParam("low", 3), nn.NewParam("high", 2)}
		for _, p := range params {
			for i := range p.Grad {
				p.Grad[i] = float32(r + 1)
			}
		}
		red := newGradReducer(comm, params, 4*2) // a bucket each: "high" first
		red.begin(1, 2)
		red.announce(params[1])
		if r == 1 { // the step fails
			red.abandon()
			comm.Abort(1)
			if got := red.buckets[0].buf; !slices.Equal(got, []float32{1.5, 1.5}) {
				return fmt.Errorf("rank 1's first bucket after abandon: %v, want the sum [1.5 1.5]", got)
			}
			return nil
		}
		red.announce(params[0])
		_, err := red.finish(make([]float32, nSlots))
		return err
	})
	if !errors.Is(errs[0], ErrCommAborted) || errs[1] != nil {
		t.Errorf("rank 0: %v (want ErrCommAborted); rank 1: %v", errs[0], errs[1])
	}
}
