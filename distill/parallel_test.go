package distill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// distillRanks runs a distillation on n ranks (goroutines over train.LocalComm): Run with cfg,
// or, when resume, Resume of cfg.RunDir. Rank r > 0 is given another run directory, where it
// must write nothing; hooks(r) are rank r's, with its context. It returns every rank's result
// and error.
func distillRanks(t *testing.T, cfg Config, n int, resume bool, hooks func(r int) (context.Context, Hooks)) ([]*Result, []error) {
	t.Helper()
	comms := train.LocalComm(n)
	results := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			if r > 0 {
				c.RunDir = filepath.Join(filepath.Dir(cfg.RunDir), fmt.Sprint("rank", r))
			}
			opts := Options{Comm: comms[r]}
			ctx, h := hooks(r)
			if resume {
				results[r], errs[r] = ResumeWith(ctx, c.RunDir, h, opts)
			} else {
				results[r], errs[r] = RunWith(ctx, c, h, opts)
			}
			if errs[r] != nil && !train.IsJobError(errs[r]) && !errors.Is(errs[r], train.ErrInterrupted) {
				comms[r].Abort(1)
			}
		}()
	}
	wg.Wait()
	for r := 1; r < n; r++ {
		dir := filepath.Join(filepath.Dir(cfg.RunDir), fmt.Sprint("rank", r))
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("rank %d wrote %s (stat: %v)", r, dir, err)
		}
	}
	return results, errs
}

// TestDistillDataParallel distils the fixture teacher into a cnn student on 2 ranks and as one
// process, dropout 0, with augmented copies in the transfer set and a baseline trained too:
// the student's and the baseline's figures agree within float32 summation error (1e-5
// relative), the teacher runs on rank 0 only, and rank 0 alone writes (the report included).
func TestDistillDataParallel(t *testing.T) {
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "one"))
	cfg.Student.Dropout = 0
	cfg.Augment.Copies = 1
	cfg.TrainBaseline = true
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunDir = filepath.Join(t.TempDir(), "rank0")
	var calls [2]atomic.Int64
	results, errs := distillRanks(t, cfg, 2, false, func(r int) (context.Context, Hooks) { return context.Background(), counting(&calls[r]) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if calls[0].Load() == 0 || calls[1].Load() != 0 {
		t.Errorf("the teacher ran %d times on rank 0 and %d on rank 1, want some and none", calls[0].Load(), calls[1].Load())
	}
	got := results[0]
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	for _, pair := range []struct {
		name      string
		want, got train.FinalRecord
	}{{"student", want.Student, got.Student}, {"baseline", *want.Baseline, *got.Baseline}} {
		w, g := pair.want, pair.got
		if !near(w.TestLoss, g.TestLoss) || w.TestAcc != g.TestAcc || w.BestEpoch != g.BestEpoch || !near(w.BestValidLoss, g.BestValidLoss) {
			t.Errorf("%s: 2 ranks test %v/%v valid %v (epoch %d), one process %v/%v %v (%d)", pair.name,
				g.TestLoss, g.TestAcc, g.BestValidLoss, g.BestEpoch, w.TestLoss, w.TestAcc, w.BestValidLoss, w.BestEpoch)
		}
	}
	for i, w := range want.Train.Epochs {
		g := got.Train.Epochs[i]
		if !near(w.TrainLoss, g.TrainLoss) || !near(w.ValidLoss, g.ValidLoss) || w.TrainAcc != g.TrainAcc || w.Tokens != g.Tokens {
			t.Errorf("student epoch %d: 2 ranks %v/%v valid %v, one process %v/%v %v", w.Epoch, g.TrainLoss, g.TrainAcc, g.ValidLoss, w.TrainLoss, w.TrainAcc, w.ValidLoss)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.RunDir, ReportFile)); err != nil {
		t.Errorf("rank 0 wrote no report: %v", err)
	}
}

// TestDistillDataParallelResume stops a 2-rank distillation (dropout on) inside the student's
// second epoch, by an interrupt that reaches rank 1 only, and resumes it on 2 ranks: the
// figures of the 2-rank distillation left alone, bit for bit, without running the teacher
// again. Rank 1 is never given rank 0's run directory.
func TestDistillDataParallelResume(t *testing.T) {
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "rank0"))
	results, errs := distillRanks(t, cfg, 2, false, func(int) (context.Context, Hooks) { return context.Background(), quietHooks() })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want := results[0]

	cfg.RunDir = filepath.Join(t.TempDir(), "rank0")
	_, errs = distillRanks(t, cfg, 2, false, func(r int) (context.Context, Hooks) {
		h := quietHooks()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if r == 1 {
			h.Meter = &cancelAfter{n: 8, cancel: cancel} // its 8th batch, inside epoch 2 (6 batches each)
		}
		return ctx, h
	})
	for r, err := range errs {
		if !errors.Is(err, train.ErrInterrupted) {
			t.Fatalf("rank %d: %v, want ErrInterrupted", r, err)
		}
	}
	var calls [2]atomic.Int64
	results, errs = distillRanks(t, cfg, 2, true, func(r int) (context.Context, Hooks) { return context.Background(), counting(&calls[r]) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := results[0]
	if calls[0].Load()+calls[1].Load() != 0 {
		t.Errorf("the resume ran the teacher %d times", calls[0].Load()+calls[1].Load())
	}
	if got.Train == nil || len(got.Train.Epochs) != len(want.Train.Epochs) {
		t.Fatalf("resumed run: %+v", got.Train)
	}
	for i, w := range want.Train.Epochs {
		g := got.Train.Epochs[i]
		if w.TrainLoss != g.TrainLoss || w.TrainAcc != g.TrainAcc || w.ValidLoss != g.ValidLoss || w.ValidAcc != g.ValidAcc {
			t.Errorf("epoch %d: got %v/%v %v/%v, want %v/%v %v/%v", w.Epoch, g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc,
				w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
		}
	}
	if got.Student.TestAcc != want.Student.TestAcc || got.Student.TestLoss != want.Student.TestLoss {
		t.Errorf("test: got %v/%v, want %v/%v", got.Student.TestAcc, got.Student.TestLoss, want.Student.TestAcc, want.Student.TestLoss)
	}
}
