package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// runRanks runs cfg as a data-parallel run of n ranks, goroutines over LocalComm; rank r > 0
// is given its own run directory (rankDir(r)), where it must write nothing. It returns rank 0's
// result and every rank's error.
func runRanks(t *testing.T, cfg Config, n int, rankDir func(r int) string) (*Result, []error) {
	t.Helper()
	comms := LocalComm(n)
	results := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			if r > 0 {
				c.RunDir = rankDir(r)
			}
			results[r], errs[r] = RunWith(context.Background(), c, quietHooks(), Options{Comm: comms[r]})
			if errs[r] != nil {
				comms[r].Abort(1) // as the CLI does: the others stop waiting
			}
		}()
	}
	wg.Wait()
	return results[0], errs
}

// runWeights reads a run's last weights, flat, in the model's order.
func runWeights(t *testing.T, dir string) []float32 {
	t.Helper()
	info, err := ReadRunInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	impl, err := blas.Load("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.NewCPU(impl, 1), info.Model, nn.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := openCheckpointDir(dir, LastDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.LoadWeights(filepath.Join(ck, WeightsFile), m); err != nil {
		t.Fatal(err)
	}
	var w []float32
	for _, p := range m.Params() {
		w = append(w, p.Data()...)
	}
	return w
}

// close reports whether a and b agree within rel relative to the larger of them.
func closeTo(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

// TestDataParallelMatchesOneRank trains the same global batches on 1 rank and on 2 and 4
// (goroutines over LocalComm), dropout 0, including ranks with no review in a batch: the
// losses, accuracies and final weights agree within
// float32 summation error (the gradients are summed in another order, so not bit for bit), and
// the ranks other than 0 write nothing.
func TestDataParallelMatchesOneRank(t *testing.T) {
	const rel = 1e-5
	cases := []struct {
		model        string
		ranks, batch int
	}{
		{"cnn", 2, 13}, {"cnn", 4, 13}, {"lstm", 2, 13},
		{"cnn", 4, 3}, // fewer reviews in a batch than ranks: rank 0's share is always empty
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d-ranks-batch-%d", tc.model, tc.ranks, tc.batch), func(t *testing.T) {
			cfg := smallConfig(tc.model)
			cfg.Dropout = 0
			cfg.Epochs = 2
			cfg.ClipNorm = 1         // clipping runs on the reduced gradient
			cfg.BatchSize = tc.batch // the ranks' shares differ in size: they are weighted by it
			cfg.RunDir = filepath.Join(t.TempDir(), "one")
			want, err := Run(context.Background(), cfg, quietHooks())
			if err != nil {
				t.Fatal(err)
			}
			base := t.TempDir()
			cfg.RunDir = filepath.Join(base, "rank0")
			got, errs := runRanks(t, cfg, tc.ranks, func(r int) string { return filepath.Join(base, fmt.Sprint("rank", r)) })
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for r := 1; r < tc.ranks; r++ {
				if _, err := os.Stat(filepath.Join(base, fmt.Sprint("rank", r))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("rank %d wrote its run directory (stat: %v)", r, err)
				}
			}
			for i, w := range want.Epochs {
				g := got.Epochs[i]
				if !closeTo(w.TrainLoss, g.TrainLoss, rel) || !closeTo(w.ValidLoss, g.ValidLoss, rel) {
					t.Errorf("epoch %d: losses train %v valid %v, want %v %v", w.Epoch, g.TrainLoss, g.ValidLoss, w.TrainLoss, w.ValidLoss)
				}
				if w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc || w.Tokens != g.Tokens || w.TrainBatches != g.TrainBatches {
					t.Errorf("epoch %d: acc %v/%v tokens %d batches %d, want %v/%v %d %d", w.Epoch,
						g.TrainAcc, g.ValidAcc, g.Tokens, g.TrainBatches, w.TrainAcc, w.ValidAcc, w.Tokens, w.TrainBatches)
				}
			}
			if !closeTo(want.Final.TestLoss, got.Final.TestLoss, rel) || want.Final.TestAcc != got.Final.TestAcc || want.Final.BestEpoch != got.Final.BestEpoch {
				t.Errorf("test %v/%v (best epoch %d), want %v/%v (%d)", got.Final.TestLoss, got.Final.TestAcc, got.Final.BestEpoch,
					want.Final.TestLoss, want.Final.TestAcc, want.Final.BestEpoch)
			}
			ww, gw := runWeights(t, want.RunDir), runWeights(t, got.RunDir)
			var scale, worst float64
			for i := range ww {
				scale = math.Max(scale, math.Abs(float64(ww[i])))
				worst = math.Max(worst, math.Abs(float64(ww[i])-float64(gw[i])))
			}
			if worst > rel*scale {
				t.Errorf("final weights differ by up to %g (largest weight %g)", worst, scale)
			}
			t.Logf("largest weight difference %g (largest weight %g); train loss %v vs %v", worst, scale, got.Epochs[len(got.Epochs)-1].TrainLoss, want.Epochs[len(want.Epochs)-1].TrainLoss)
		})
	}
}

// TestOneRankCommIsToday: a run given a one-rank Comm is the run without one, bit for bit
// (dropout on).
func TestOneRankCommIsToday(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "plain")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunDir = filepath.Join(t.TempDir(), "comm")
	got, err := RunWith(context.Background(), cfg, quietHooks(), Options{Comm: LocalComm(1)[0]})
	if err != nil {
		t.Fatal(err)
	}
	sameFigures(t, want, got)
}

// TestDataParallelRanksMustAgree: a rank with another seed (other initial weights) or other
// data stops every rank with an error naming it; nothing hangs.
func TestDataParallelRanksMustAgree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"seed", func(c *Config) { c.Seed++ }, "rank 1's initial weights differ from rank 0's"},
		{"limit", func(c *Config) { c.Limit = 40 }, "rank 1 has"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig("cnn")
			cfg.Epochs = 1
			base := t.TempDir()
			cfg.RunDir = filepath.Join(base, "rank0")
			comms := LocalComm(2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for r := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := cfg
					if r == 1 {
						c.RunDir = filepath.Join(base, "rank1")
						tc.change(&c)
					}
					_, errs[r] = RunWith(context.Background(), c, quietHooks(), Options{Comm: comms[r]})
				}()
			}
			wg.Wait()
			for r, err := range errs {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("rank %d: error %v, want one saying %q", r, err, tc.want)
				}
			}
		})
	}
}

// TestLocalCommAbort: a rank that aborts releases the ranks waiting in a collective operation.
func TestLocalCommAbort(t *testing.T) {
	comms := LocalComm(2)
	done := make(chan error)
	go func() { done <- comms[0].AllreduceSum(make([]float32, 3)) }()
	comms[1].Abort(1)
	if err := <-done; !errors.Is(err, ErrCommAborted) {
		t.Fatalf("allreduce after an abort: %v, want ErrCommAborted", err)
	}
}

// TestLocalCommSums: the allreduce sums in rank order and every rank gets the sum; broadcast
// copies the root's buffer.
func TestLocalCommSums(t *testing.T) {
	comms := LocalComm(3)
	bufs := [][]float32{{1, 2}, {10, 20}, {100, 200}}
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := comms[r].AllreduceSum(bufs[r]); err != nil {
				t.Error(err)
			}
			if err := comms[r].Broadcast(bufs[r][:1], 2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for r, b := range bufs {
		if b[0] != 111 || b[1] != 222 {
			t.Errorf("rank %d: %v, want [111 222]", r, b)
		}
	}
}

// cancelAfterWork is a Meter that cancels a context after n training batches of its rank.
type cancelAfterWork struct {
	WallClock
	n      int
	cancel context.CancelFunc
}

func (m *cancelAfterWork) AddWork(tokens int, flops float64) {
	m.WallClock.AddWork(tokens, flops)
	if m.n--; m.n == 0 {
		m.cancel()
	}
}

// TestDataParallelInterrupt: an interrupt that reaches one rank only (rank 1's context is
// cancelled after its third batch's allreduce, so that the fourth one carries the news) stops
// every rank after the same batch, the fourth, with ErrInterrupted and a
// checkpoint by rank 0; resumed as one process, the run (dropout 0) ends with the figures of a
// run left alone, within float32 summation error.
func TestDataParallelInterrupt(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Dropout = 0
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "one")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	cfg.RunDir = filepath.Join(base, "rank0")
	comms := LocalComm(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, hooks := cfg, quietHooks()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if r == 1 {
				c.RunDir = filepath.Join(base, "rank1")
				hooks.Meter = &cancelAfterWork{n: 3, cancel: cancel}
			}
			_, errs[r] = RunWith(ctx, c, hooks, Options{Comm: comms[r]})
			if errs[r] != nil && !errors.Is(errs[r], ErrInterrupted) {
				comms[r].Abort(1)
			}
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "after 4 of") {
			t.Fatalf("rank %d: %v, want ErrInterrupted after 4 batches", r, err)
		}
	}
	got, err := Resume(context.Background(), cfg.RunDir, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !closeTo(w.TrainLoss, g.TrainLoss, 1e-5) || !closeTo(w.ValidLoss, g.ValidLoss, 1e-5) || w.TrainAcc != g.TrainAcc {
			t.Errorf("epoch %d: train %v/%v valid %v, want %v/%v %v", w.Epoch, g.TrainLoss, g.TrainAcc, g.ValidLoss, w.TrainLoss, w.TrainAcc, w.ValidLoss)
		}
	}
	if !closeTo(want.Final.TestLoss, got.Final.TestLoss, 1e-5) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test %v/%v, want %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
}
