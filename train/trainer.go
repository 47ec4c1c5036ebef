package train

// The trainer: one run's state while it trains, its set-up (data, model, optimiser, resume), its
// checkpoints and the bookkeeping of its time.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sentibench/sentibench/internal/memstat"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/internal/tensorboard"
	"github.com/sentibench/sentibench/nn"
)

// trainer holds one run while it trains.
type trainer struct {
	cfg   Config
	hooks Hooks
	obj   Objective
	dir   string
	ds    *dataset
	model nn.Model
	opt   *nn.Adam
	eng   engine  // runs the steps: on the CPU, or on a GPU (Pull before reading the weights)
	rng   *nn.RNG // dropout masks
	st    *state
	saved *checkpointAt // the last checkpoint on disk; nil before the first
	// optSteps counts the optimiser steps taken (the schedule's clock, restored from the
	// checkpoint's optimiser state); tb, when not nil, receives the run's figures.
	optSteps int64
	tb       *TensorBoardLog
	// comm connects the ranks of a data-parallel run (SingleComm: one); see parallel.go.
	comm        Comm
	grads       *gradReducer // sums the ranks' gradients (overlap.go); made on first use
	bucketBytes int          // the size of its buckets
	slots       []float32    // the step's figures, summed after the gradients
	stopAll     bool         // a rank was interrupted: every rank stops after this step
	reduced     allreduceTimes
	// start is when this process began the run; priorSeconds the time that the earlier
	// processes of a resumed run spent on it (the checkpoint records it).
	start        time.Time
	priorSeconds float64
}

// close closes the TensorBoard log and frees the run's devices: the encoder's copy on a GPU,
// then the engine.
func (t *trainer) close() error {
	var errs []error
	if t.tb != nil {
		errs = append(errs, t.tb.Close())
	}
	if t.ds != nil {
		errs = append(errs, t.ds.enc.close())
	}
	errs = append(errs, t.eng.Close())
	return errors.Join(errs...)
}

// newTrainer reads the data, builds the model and optimiser, and, when resuming, restores the
// last checkpoint.
func newTrainer(ctx context.Context, cfg Config, hooks Hooks, opts Options, resume bool) (t *trainer, err error) {
	hooks.fill()
	t = &trainer{cfg: cfg, hooks: hooks, obj: opts.Objective, dir: cfg.RunDir, start: time.Now(), comm: opts.Comm}
	if t.comm == nil {
		t.comm = SingleComm{}
	}
	if t.bucketBytes = opts.bucketBytes; t.bucketBytes <= 0 {
		t.bucketBytes = defaultBucketBytes
	}
	if !t.writes() { // rank 0 reports
		t.hooks.Log, t.hooks.Progress, t.hooks.ProgressMode = io.Discard, io.Discard, progress.Quiet
		hooks = t.hooks
	}
	dev, err := newDevice(cfg)
	if err != nil {
		return nil, err
	}
	gdev, err := openGPU(cfg) // nil on the CPU; opened before the data are read, to fail early
	if err != nil {
		return nil, err
	}
	tr := t // the returns below set t to nil
	defer func() {
		if err != nil && tr.eng == nil { // once there is an engine, tr.close frees both
			if tr.ds != nil {
				tr.ds.enc.close() // before the device goes
			}
			if gdev != nil {
				gdev.Close()
			}
		}
	}()
	if dm, ok := hooks.Meter.(DeviceMeter); ok && gdev != nil {
		dm.UseDevice(gdev)
	}

	// A run killed before its first checkpoint starts again from its configuration.
	if resume && t.writes() {
		if _, err := openCheckpointDir(t.dir, LastDir); errors.Is(err, errNoCheckpoint) {
			resume = false
		}
	}
	if t.parallel() { // the ranks agree before any work; rank 0 says whether there is a checkpoint
		if resume, err = t.startRanks(cfg, opts, resume); err != nil {
			return nil, err
		}
	}

	// The data: split, vocabulary (saved with the run; a resumed run's rank 0 reads it back, and
	// the other ranks build it again from the data, checked against rank 0's) and inputs.
	vocabPath := ""
	if resume && t.writes() {
		vocabPath = filepath.Join(t.dir, VocabFile)
	}
	t0 := time.Now()
	if t.ds, err = t.loadData(ctx, cfg, vocabPath, opts.Objective.ExtraTrain, gdev, hooks); err != nil {
		return nil, err
	}
	fmt.Fprintf(hooks.Log, "Data: %d train | %d valid | %d test (read and tokenized in %.1f s)\n",
		len(t.ds.train), len(t.ds.valid), len(t.ds.test), time.Since(t0).Seconds())

	// The model, initialised from the seed.
	mc, err := cfg.modelConfig(t.ds.vocabSize(), t.ds.featureDim, len(t.ds.classes))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := t.ds.checkBatchMemory(mc, cfg.microBatchSize(), nn.Train, opts.batchBudget); err != nil {
		return nil, err // before the run directory gets its files
	}
	t.rng = nn.NewRNG(cfg.Seed)
	if t.model, err = nn.NewModel(dev, mc, t.rng); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if cfg.GloVe != "" {
		if err := loadGloVe(t.model, cfg, t.ds.vocab, hooks, resume); err != nil {
			return nil, err
		}
	}
	schedule, err := cfg.schedule(len(t.ds.train))
	if err != nil {
		return nil, err
	}
	if t.opt, err = nn.NewAdam(nn.AdamConfig{LR: cfg.LR, MaxGradNorm: cfg.ClipNorm, DecoupledWeightDecay: cfg.WeightDecay, Schedule: schedule}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if t.parallel() {
		if gdev != nil || opts.newEngine != nil {
			return nil, fmt.Errorf("train: data-parallel training (%d ranks) runs on the CPU only: the GPU engine cannot sum gradients across ranks yet", t.comm.Size())
		}
		if err := t.checkSameStart(); err != nil {
			return nil, err
		}
		if t.comm.Rank() > 0 {
			t.rng = dropoutRNG(cfg.Seed, t.comm.Rank())
		}
		fmt.Fprintf(hooks.Log, "Data-parallel: %d ranks, each trains on 1/%d of every batch\n", t.comm.Size(), t.comm.Size())
	}
	switch {
	case opts.newEngine != nil: // the tests' device stand-in
		t.eng, err = opts.newEngine(t.model, t.opt)
	case gdev != nil:
		t.eng, err = newGPUEngine(gdev, t.model, t.opt)
	default:
		t.eng = &cpuEngine{m: t.model, opt: t.opt, runner: &nn.Runner{}, dev: dev}
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tr.close()
		}
	}()
	params := countParams(t.model)
	fmt.Fprintf(hooks.Log, "Model: %s, dropout %g, batch size %d, device %s\n", cfg.Kind, cfg.Dropout, cfg.BatchSize, t.eng.Name())
	fmt.Fprintf(hooks.Log, "The model has %s trainable parameters\n", progress.FormatCount(int64(params)))

	if resume {
		if t.st, err = t.restoreLast(); err != nil {
			return nil, err
		}
		if err := t.restoreRNG(); err != nil {
			return nil, err
		}
		t.ds.rng.State = t.st.DataRNG
		t.saved = &checkpointAt{epoch: t.st.Epoch, batch: t.st.Batch}
		t.priorSeconds = t.st.Seconds
		t.optSteps = t.opt.Steps()
		if err := t.openTensorBoard(resume); err != nil {
			return nil, err
		}
		if !t.trained() { // a finished training's log may hold the test, which a retest replaces
			if err := t.rewriteRunLog(); err != nil {
				return nil, err
			}
		}
		if err := t.eng.Push(); err != nil {
			return nil, err
		}
		fmt.Fprintf(hooks.Log, "Resuming %s after epoch %d", t.dir, t.st.Epoch)
		if t.st.Batch > 0 {
			fmt.Fprintf(hooks.Log, " and %d batches of epoch %d", t.st.Batch, t.st.Epoch+1)
		}
		fmt.Fprintln(hooks.Log)
		return t, nil
	}

	// A new run: its configuration, vocabulary and starting point on disk before any work.
	t.st = &state{DataRNG: t.ds.rng.State}
	if !t.writes() {
		return t, t.eng.Push()
	}
	if t.ds.vocab != nil {
		if err := t.ds.vocab.Save(filepath.Join(t.dir, VocabFile)); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	info := RunInfo{Config: cfg, Model: mc, Labels: t.ds.classes, Sizes: t.ds.sizes(), Params: params, Version: Version, Kind: opts.Objective.Kind}
	if err := writeRunInfo(t.dir, info); err != nil {
		return nil, err
	}
	if err := t.rewriteRunLog(); err != nil {
		return nil, err
	}
	if err := t.openTensorBoard(resume); err != nil {
		return nil, err
	}
	if err := t.eng.Push(); err != nil {
		return nil, err
	}
	return t, nil
}

// tensorBoardDir is where the run's TensorBoard event files go ("" for none).
func (c Config) tensorBoardDir() string {
	switch c.TensorBoard {
	case "":
		return filepath.Join(c.RunDir, "tb")
	case TensorBoardOff:
		return ""
	}
	return c.TensorBoard
}

// TensorBoardOff is Config.TensorBoard's value for a run without TensorBoard event files.
const TensorBoardOff = "none"

// openTensorBoard opens the run's TensorBoard log: a resumed run's continues after the steps
// of its checkpoint; a new run's starts afresh (without the event files that a process killed
// before the run's first checkpoint left) with the hyperparameters.
func (t *trainer) openTensorBoard(resume bool) error {
	dir := t.cfg.tensorBoardDir()
	if dir == "" || !t.writes() { // rank 0 of a data-parallel run writes it
		return nil
	}
	var err error
	if resume {
		t.tb, err = OpenTensorBoardLog(dir, t.st.Records, t.optSteps)
		return err
	}
	stale, err := tensorboard.EventFiles(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if t.tb, err = OpenTensorBoardLog(dir, nil, 0); err != nil {
		return err
	}
	return t.tb.HParams(t.cfg)
}

// microBatchSize is the largest micro-batch of a batch (the batch itself without accumulation).
func (c Config) microBatchSize() int {
	if c.GradAccum > 1 {
		return (c.BatchSize + c.GradAccum - 1) / c.GradAccum
	}
	return c.BatchSize
}

// VocabFile is the vocabulary's file name inside a run directory (word models).
const VocabFile = "vocab.txt"

// Version is the sentibench version recorded in run directories; the CLI sets it.
var Version = "dev"

func (t *trainer) saveLast() error {
	if t.tb != nil { // the steps up to the checkpoint on disk first
		if err := t.tb.Flush(); err != nil {
			return err
		}
	}
	if err := t.saveRNGs(); err != nil {
		return err
	}
	if err := t.eng.Pull(); err != nil {
		return err
	}
	t.st.Seconds = t.seconds()
	if !t.writes() {
		return nil
	}
	if err := saveLast(t.dir, t.model, t.opt, t.st); err != nil {
		return err
	}
	t.saved = &checkpointAt{epoch: t.st.Epoch, batch: t.st.Batch}
	return nil
}

// trained says that the training is over (all epochs, or stopped early): what is left is the test.
func (t *trainer) trained() bool { return t.st.Done || t.st.Epoch >= t.cfg.Epochs }

// seconds is the run's time so far, over all the processes that worked on it.
func (t *trainer) seconds() float64 { return t.priorSeconds + time.Since(t.start).Seconds() }

// checkpointAt is where the last checkpoint on disk stands: after epoch epoch and batch
// batches of the next one.
type checkpointAt struct{ epoch, batch int }

// checkpointNote says what a run that stops on an error leaves to go on from: the last
// checkpoint, or none yet.
func (t *trainer) checkpointNote() string {
	if t.saved == nil {
		return fmt.Sprintf("no checkpoint was written yet (%s holds no weights): start the run again in a new directory", t.dir)
	}
	at := fmt.Sprintf("after epoch %d", t.saved.epoch)
	if t.saved.batch > 0 {
		at += fmt.Sprintf(" and %d batches of epoch %d", t.saved.batch, t.saved.epoch+1)
	}
	return fmt.Sprintf("the last good checkpoint, %s, stays in %s", at, filepath.Join(t.dir, LastDir))
}

func countParams(m nn.Model) int {
	n := 0
	for _, p := range m.Params() {
		if !p.Frozen {
			n += p.Size()
		}
	}
	return n
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// processPeakRSSMiB is the process's peak resident memory since it started (0 where the
// system does not say).
func processPeakRSSMiB() float64 {
	b, _ := memstat.PeakRSS()
	return float64(b) / (1 << 20)
}
