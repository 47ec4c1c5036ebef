package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	return runRanksWith(t, cfg, n, rankDir, Options{})
}

// runRanksWith is runRanks with options (their Comm is each rank's).
func runRanksWith(t *testing.T, cfg Config, n int, rankDir func(r int) string, opts Options) (*Result, []error) {
	t.Helper()
	results := make([]*Result, n)
	errs := onRanks(n, func(r int, comm Comm) error {
		c := cfg
		if r > 0 {
			c.RunDir = rankDir(r)
		}
		o := opts
		o.Comm = comm
		var err error
		results[r], err = RunWith(context.Background(), c, quietHooks(), o)
		return err
	})
	return results[0], errs
}

// onRanks runs fn(r, comm) for each rank r of an n-rank LocalComm job, each in its own
// goroutine, and returns every rank's error. A rank whose error is its own (not a JobError or
// ErrInterrupted, which every rank of the job returns together) aborts its Comm, as the CLI
// does, so that the others stop waiting.
func onRanks(n int, fn func(r int, comm Comm) error) []error {
	comms := LocalComm(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			errs[r] = fn(r, comms[r])
			if errs[r] != nil && !IsJobError(errs[r]) && !errors.Is(errs[r], ErrInterrupted) {
				comms[r].Abort(1)
			}
		})
	}
	wg.Wait()
	return errs
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
// (goroutines over LocalComm), dropout 0, including ranks with no review in a batch and
// gradient accumulation (--grad-accum, on the one process as on the ranks): the losses,
// accuracies and final weights agree within
// float32 summation error (the gradients are summed in another order, so not bit for bit), and
// the ranks other than 0 write nothing. The ranks sum their gradients in buckets of 4 KiB
// (several per model), overlapping the backward pass (without accumulation).
func TestDataParallelMatchesOneRank(t *testing.T) {
	const rel = 1e-5
	cases := []struct {
		model               string
		ranks, batch, accum int
	}{
		{"cnn", 2, 13, 0}, {"cnn", 4, 13, 0}, {"lstm", 2, 13, 0},
		{"cnn", 4, 27, 0}, // the sample's 84 train reviews in batches of 27 leave one of 3: rank 0's share is empty
		// Gradient accumulation: each rank's share in micro-batches (of 2 and 1 reviews for a
		// share of 3, one per review for a share below 3), then the allreduce.
		{"cnn", 2, 13, 3}, {"lstm", 2, 13, 3}, {"cnn", 4, 13, 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d-ranks-batch-%d-accum-%d", tc.model, tc.ranks, tc.batch, tc.accum), func(t *testing.T) {
			cfg := smallConfig(tc.model)
			cfg.Dropout = 0
			cfg.Epochs = 2
			cfg.ClipNorm = 1         // clipping runs on the reduced gradient
			cfg.BatchSize = tc.batch // the ranks' shares differ in size: they are weighted by it
			cfg.GradAccum = tc.accum // the one-process run accumulates as many micro-batches
			cfg.RunDir = filepath.Join(t.TempDir(), "one")
			want, err := Run(context.Background(), cfg, quietHooks())
			if err != nil {
				t.Fatal(err)
			}
			base := t.TempDir()
			cfg.RunDir = filepath.Join(base, "rank0")
			got, errs := runRanksWith(t, cfg, tc.ranks, func(r int) string { return filepath.Join(base, fmt.Sprint("rank", r)) },
				Options{bucketBytes: 4 << 10})
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

// TestDataParallelRanksMustAgree: a rank with other settings, another build, other data or
// other word vectors (other initial weights) stops every rank with the same error (a JobError),
// naming the rank and the difference; nothing hangs, rank 0 leaves no run directory and the
// other rank writes none.
func TestDataParallelRanksMustAgree(t *testing.T) {
	csv := writeReviewsCSV(t, filepath.Join(t.TempDir(), "reviews.csv"), -1)
	other := writeReviewsCSV(t, filepath.Join(t.TempDir(), "other.csv"), 7) // one label flipped
	vectors := writeVectors(t, filepath.Join(t.TempDir(), "a.txt"), 0)
	otherVectors := writeVectors(t, filepath.Join(t.TempDir(), "b.txt"), 1)
	for _, tc := range []struct {
		name   string
		change func(*Config, *Options)
		want   []string
	}{
		{"seed", func(c *Config, _ *Options) { c.Seed++ }, []string{"rank 1's seed: 1235 (rank 0's: 1234)"}},
		{"epochs and dropout", func(c *Config, _ *Options) { c.Epochs, c.Dropout = 2, 0.1 },
			[]string{"rank 1's dropout: 0.1 (rank 0's: 0.3)", "rank 1's epochs: 2 (rank 0's: 1)"}},
		{"limit", func(c *Config, _ *Options) { c.Limit = 40 }, []string{"rank 1's limit: 40 (rank 0's: 60)"}},
		{"build", func(_ *Config, o *Options) { o.build = "sentibench other" }, []string{"rank 1's build: sentibench other (rank 0's: sentibench "}},
		{"data", func(c *Config, _ *Options) { c.Data, c.Limit = other, 0 }, []string{"rank 1's data checksum: ", "(" + other + ") (rank 0's: ", "(" + csv + "))"}},
		{"word vectors", func(c *Config, _ *Options) { c.GloVe = otherVectors }, []string{"rank 1's initial weights differ from rank 0's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig("cnn")
			cfg.Epochs = 1
			if tc.name == "data" {
				cfg.Data, cfg.Limit = csv, 0
			}
			if tc.name == "word vectors" {
				cfg.GloVe = vectors
			}
			base := t.TempDir()
			cfg.RunDir = filepath.Join(base, "rank0")
			errs := onRanks(2, func(r int, comm Comm) error {
				c, o := cfg, Options{Comm: comm}
				if r == 1 {
					c.RunDir = filepath.Join(base, "rank1")
					tc.change(&c, &o)
				}
				_, err := RunWith(context.Background(), c, quietHooks(), o)
				return err
			})
			for r, err := range errs {
				if !IsJobError(err) {
					t.Errorf("rank %d: error %v, want a JobError", r, err)
					continue
				}
				for _, want := range tc.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("rank %d: error %v, want one saying %q", r, err, want)
					}
				}
			}
			t.Logf("rank 0: %v", errs[0])
			if errs[0] != nil && errs[1] != nil && errs[0].Error() != errs[1].Error() {
				t.Errorf("the ranks' errors differ:\n%v\n%v", errs[0], errs[1])
			}
			for r := range 2 {
				if _, err := os.Stat(filepath.Join(base, fmt.Sprint("rank", r))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("rank %d's run directory exists (stat: %v)", r, err)
				}
			}
		})
	}
}

// TestDataParallelRankOwnSettings: the settings of a rank's own machine may differ (the data
// file's path, threads, BLAS, the TensorBoard directory): the run trains, and the other rank
// writes nothing.
func TestDataParallelRankOwnSettings(t *testing.T) {
	csv := writeReviewsCSV(t, filepath.Join(t.TempDir(), "reviews.csv"), -1)
	cp := writeReviewsCSV(t, filepath.Join(t.TempDir(), "copy.csv"), -1)
	cfg := smallConfig("cnn")
	cfg.Epochs, cfg.Data, cfg.Limit = 1, csv, 0
	base := t.TempDir()
	cfg.RunDir = filepath.Join(base, "rank0")
	rank1 := filepath.Join(base, "rank1")
	errs := onRanks(2, func(r int, comm Comm) error {
		c := cfg
		if r == 1 {
			c.RunDir, c.Data, c.Threads, c.BLAS, c.TensorBoard = rank1, cp, 1, "gonum", filepath.Join(rank1, "tb")
		}
		_, err := RunWith(context.Background(), c, quietHooks(), Options{Comm: comm})
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rank1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rank 1 wrote %s (stat: %v)", rank1, err)
	}
}

// TestDataParallelBatchSmallerThanRanks: more ranks than a batch has reviews is a clear error
// naming the batch size, on every rank, before the run directory gets a file.
func TestDataParallelBatchSmallerThanRanks(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.BatchSize = 3
	base := t.TempDir()
	cfg.RunDir = filepath.Join(base, "rank0")
	_, errs := runRanks(t, cfg, 4, func(r int) string { return filepath.Join(base, fmt.Sprint("rank", r)) })
	for r, err := range errs {
		var ce *ConfigError
		if !IsJobError(err) || !errors.As(err, &ce) || ce.Field != "batch_size" || !strings.Contains(err.Error(), "4 ranks share each batch, so rank 3 would get none of a batch of 3 reviews") {
			t.Errorf("rank %d: %v, want a JobError about batch_size", r, err)
		}
	}
	if entries, err := os.ReadDir(base); err != nil || len(entries) > 0 {
		t.Errorf("%s holds %d entries (%v), want none", base, len(entries), err)
	}
}

// writeReviewsCSV writes 60 short reviews with their labels and split (text,label,split) to
// path; flip >= 0 turns that review's label over.
func writeReviewsCSV(t *testing.T, path string, flip int) string {
	t.Helper()
	good := []string{"great", "fine", "moving", "superb", "lovely", "witty"}
	bad := []string{"dull", "awful", "boring", "clumsy", "tedious", "weak"}
	var b strings.Builder
	b.WriteString("text,label,split\n")
	for i := range 60 {
		label, words := "pos", good
		if i%2 == 1 {
			label, words = "neg", bad
		}
		if i == flip {
			label = map[string]string{"pos": "neg", "neg": "pos"}[label]
		}
		split := "train"
		switch {
		case i >= 48:
			split = "test"
		case i >= 36:
			split = "valid"
		}
		fmt.Fprintf(&b, "\"the film was %s and %s, a %s story number %d\",%s,%s\n", words[i%6], words[(i/6)%6], words[(i+3)%6], i, label, split)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeVectors writes 16-dimensional word vectors of a few words, shifted by shift.
func writeVectors(t *testing.T, path string, shift int) string {
	t.Helper()
	var b strings.Builder
	for i, w := range []string{"the", "movie", "film", "good", "bad", "great", "worst", "and"} {
		b.WriteString(w)
		for d := range 16 {
			fmt.Fprintf(&b, " %g", float64((i*16+d+shift)%7)/7-0.5)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
	bufs := [][]float32{{1, 2}, {10, 20}, {100, 200}}
	errs := onRanks(3, func(r int, comm Comm) error {
		if err := comm.AllreduceSum(bufs[r]); err != nil {
			return err
		}
		return comm.Broadcast(bufs[r][:1], 2)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
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
// run left alone, within float32 summation error, and says that its dropout masks differ.
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
	errs := onRanks(2, func(r int, comm Comm) error {
		c, hooks := cfg, quietHooks()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if r == 1 {
			c.RunDir = filepath.Join(base, "rank1")
			hooks.Meter = &cancelAfterWork{n: 3, cancel: cancel}
		}
		_, err := RunWith(ctx, c, hooks, Options{Comm: comm})
		return err
	})
	for r, err := range errs {
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "after 4 of") {
			t.Fatalf("rank %d: %v, want ErrInterrupted after 4 batches", r, err)
		}
	}
	hooks := quietHooks()
	var log strings.Builder
	hooks.Log = &log
	got, err := Resume(context.Background(), cfg.RunDir, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "Note: resuming on one process a checkpoint written by 2 ranks: from here on the dropout masks differ") {
		t.Errorf("the resume as one process does not say that the masks differ:\n%s", log.String())
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

// resumeRanks resumes the run in dir on n ranks (goroutines over LocalComm). Only rank 0 is
// given dir; the others get a path that does not exist, since they must not read the run
// directory. It returns rank 0's result and log, and every rank's error.
func resumeRanks(t *testing.T, dir string, n int) (*Result, string, []error) {
	t.Helper()
	results := make([]*Result, n)
	var log strings.Builder
	errs := onRanks(n, func(r int, comm Comm) error {
		d, hooks := dir, quietHooks()
		if r == 0 {
			hooks.Log = &log
		} else {
			d = filepath.Join(t.TempDir(), "not-here")
		}
		var err error
		results[r], err = ResumeWith(context.Background(), d, hooks, Options{Comm: comm})
		return err
	})
	return results[0], log.String(), errs
}

// interruptRanks runs cfg on n ranks and interrupts rank 1 after stopAt of its batches (the
// next batch's allreduce stops every rank, with a checkpoint by rank 0).
func interruptRanks(t *testing.T, cfg Config, n, stopAt int) {
	t.Helper()
	errs := onRanks(n, func(r int, comm Comm) error {
		c, hooks := cfg, quietHooks()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if r > 0 {
			c.RunDir = filepath.Join(t.TempDir(), fmt.Sprint("rank", r))
		}
		if r == 1 {
			hooks.Meter = &cancelAfterWork{n: stopAt, cancel: cancel}
		}
		_, err := RunWith(ctx, c, hooks, Options{Comm: comm})
		return err
	})
	for r, err := range errs {
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("rank %d: %v, want ErrInterrupted", r, err)
		}
	}
}

// TestDataParallelResume: a 2-rank run with dropout, interrupted inside its first and its
// second epoch and resumed on 2 ranks, ends with the figures and weights of the 2-rank run left
// alone, bit for bit (every rank's dropout generator is in the checkpoint). Resumed on 3 ranks
// it finishes too, and says that the dropout masks differ.
func TestDataParallelResume(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	base := t.TempDir()
	cfg.RunDir = filepath.Join(base, "alone")
	want, errs := runRanks(t, cfg, 2, func(r int) string { return filepath.Join(base, fmt.Sprint("alone-rank", r)) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, stopAt := range []int{2, 8} { // batches of rank 1 (an epoch has 6)
		t.Run(fmt.Sprint("stop-after-", stopAt), func(t *testing.T) {
			cfg.RunDir = filepath.Join(t.TempDir(), "run")
			interruptRanks(t, cfg, 2, stopAt)
			got, log, errs := resumeRanks(t, cfg.RunDir, 2)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			sameFigures(t, want, got)
			if !slices.Equal(runWeights(t, want.RunDir), runWeights(t, got.RunDir)) {
				t.Error("the final weights differ from the run left alone's")
			}
			if strings.Contains(log, "Note: resuming") {
				t.Errorf("resuming on as many ranks printed a note on the masks:\n%s", log)
			}
		})
	}
	t.Run("on-3-ranks", func(t *testing.T) {
		cfg.RunDir = filepath.Join(t.TempDir(), "run")
		interruptRanks(t, cfg, 2, 8)
		got, log, errs := resumeRanks(t, cfg.RunDir, 3)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if len(got.Epochs) != 2 || !strings.Contains(log, "Note: resuming on 3 ranks a checkpoint written by 2 ranks: from here on the dropout masks differ") {
			t.Errorf("%d epochs; log:\n%s", len(got.Epochs), log)
		}
		st, err := readState(filepath.Join(cfg.RunDir, LastDir))
		if err != nil || st.Ranks != 3 || len(st.RankRNGs) != 2 {
			t.Errorf("the last checkpoint holds %d ranks' generators (%v), want 3", st.Ranks, err)
		}
	})
}

// TestDataParallelResumeEnds: resumed on 2 ranks, a run that has finished is left as it is on
// every rank, and a directory that holds no run is the same error on every rank.
func TestDataParallelResumeEnds(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	got, log, errs := resumeRanks(t, cfg.RunDir, 2)
	if err := errors.Join(errs...); err != nil || !strings.Contains(log, "nothing to resume") || got.Final.TestAcc == 0 {
		t.Errorf("finished run: %v; log:\n%s", err, log)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	_, _, errs = resumeRanks(t, missing, 2)
	for r, err := range errs {
		if !IsJobError(err) || !strings.Contains(err.Error(), missing) {
			t.Errorf("rank %d: %v, want a JobError naming %s", r, err, missing)
		}
	}
	if err := errs[1]; err == nil || !strings.Contains(err.Error(), "rank 0 could not resume") {
		t.Errorf("rank 1: %v", err)
	}
}

// TestDataParallelBiGRU trains the bigru head over the shared tiny random BERT on 2 ranks and
// as one process, dropout 0, from a feature cache that none has built yet: the ranks share
// the machine's cache (rank 0 builds it, rank 1 then reads it) and the figures agree within
// float32 summation error.
func TestDataParallelBiGRU(t *testing.T) {
	cfg, _ := tinyBiGRUConfig(t)
	cfg.Dropout = 0
	cfg.Epochs = 2
	cfg.Limit = 30
	cfg.FeatureCache = filepath.Join(t.TempDir(), "one-cache")
	cfg.RunDir = filepath.Join(t.TempDir(), "one")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	cfg.FeatureCache = filepath.Join(t.TempDir(), "shared-cache") // empty: the ranks build it
	base := t.TempDir()
	cfg.RunDir = filepath.Join(base, "rank0")
	got, errs := runRanks(t, cfg, 2, func(r int) string { return filepath.Join(base, fmt.Sprint("rank", r)) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !closeTo(w.TrainLoss, g.TrainLoss, 1e-5) || !closeTo(w.ValidLoss, g.ValidLoss, 1e-5) || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc {
			t.Errorf("epoch %d: 2 ranks train %v/%v valid %v/%v, one process %v/%v %v/%v", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
		}
	}
	if !closeTo(want.Final.TestLoss, got.Final.TestLoss, 1e-5) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test: 2 ranks %v/%v, one process %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
	if _, err := os.Stat(filepath.Join(base, "rank1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rank 1 wrote its run directory (stat: %v)", err)
	}
}
