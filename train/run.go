package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/memstat"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/internal/tensorboard"
	"github.com/sentibench/sentibench/nn"
)

// ErrInterrupted is returned (wrapped) when the context was cancelled during training: the run
// saved a checkpoint first, and Resume continues it.
var ErrInterrupted = errors.New("training interrupted")

// Result is what a finished run reports.
type Result struct {
	RunDir string
	Epochs []EpochRecord
	Final  FinalRecord
	// Test holds the best checkpoint's figures on the test split.
	Test Metrics
}

// Run trains a new model as cfg says, in cfg.RunDir (which must not hold a run already), and
// tests the best checkpoint at the end. Cancelling ctx stops training after a checkpoint; the
// error then wraps ErrInterrupted and Resume continues the run. The run directory is locked
// (LockRun) while Run works in it.
func Run(ctx context.Context, cfg Config, hooks Hooks) (*Result, error) {
	return RunWith(ctx, cfg, hooks, Options{})
}

// Options are what RunWith and ResumeWith take beyond the observers.
type Options struct {
	// Objective replaces the recipe's loss (distillation); the zero value is the recipe.
	Objective Objective
	// Resume applies to ResumeWith only.
	Resume ResumeOptions
	// Lock, when set, is the run directory's lock, which the caller took (CreateRun, LockRun)
	// and keeps for longer than the training (distill, bench); otherwise Run and Resume take
	// the lock themselves and release it when they return.
	Lock *RunLock
	// Comm, when set, connects the ranks of a data-parallel run (see Comm); nil is one rank.
	// Only rank 0 takes the lock and writes the run directory.
	Comm Comm

	// newEngine, when set (by the tests), makes the engine instead of the device's: a stand-in
	// for a GPU that keeps its own copy of the weights.
	newEngine func(m nn.Model, opt *nn.Adam) (engine, error)
	// batchBudget, when > 0 (set by the tests), replaces the machine's memory budget of a
	// batch (machineBatchBudget).
	batchBudget int64
	// build, when set (by the tests), replaces this build's identity (buildID), which the
	// ranks of a data-parallel run compare.
	build string
}

// RunWith is Run with options.
func RunWith(ctx context.Context, cfg Config, hooks Hooks, opts Options) (*Result, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	lock := opts.Lock
	if opts.Comm != nil && opts.Comm.Rank() != 0 {
		// Another rank of a data-parallel run: rank 0 holds the run directory.
	} else if lock == nil {
		if lock, err = CreateRun(cfg.RunDir); err != nil {
			return nil, err
		}
		defer lock.Unlock()
	} else if err := lock.holds(cfg.RunDir); err != nil {
		return nil, err
	} else if err := checkNewRun(cfg.RunDir); err != nil {
		return nil, err
	}
	t, err := newTrainer(ctx, cfg, hooks, opts, false)
	if err != nil {
		if opts.Lock == nil && lock != nil {
			lock.abandon() // removes the directory CreateRun made, and what the setup wrote in it
		}
		return nil, err
	}
	defer t.close()
	return t.run(ctx)
}

// Resume continues the run in dir after its last checkpoint. A run killed at any point and
// resumed ends with the same figures, bit for bit, as the same run left alone (on the CPU).
// The run directory is locked (LockRun) while Resume works in it.
func Resume(ctx context.Context, dir string, hooks Hooks) (*Result, error) {
	return ResumeWith(ctx, dir, hooks, Options{})
}

// ResumeWith is Resume with options.
//
// On a data-parallel run (Options.Comm of several ranks) rank 0 reads the run directory and
// gives the others its configuration and checkpoint; on as many ranks as the run had, it goes
// on bit for bit (every rank's dropout generator is in the checkpoint); on another number, or
// as one process, it goes on too, and says that the dropout masks differ.
func ResumeWith(ctx context.Context, dir string, hooks Hooks, opts Options) (res *Result, err error) {
	parallel := opts.Comm != nil && opts.Comm.Size() > 1
	if parallel && opts.Comm.Rank() != 0 {
		return resumeOtherRank(ctx, dir, hooks, opts)
	}
	// Rank 0 tells the other ranks what to do once it knows: resume with the run's
	// configuration, or stop (nothing to resume, or an error, which every rank then returns).
	told := !parallel
	tell := func(p resumePlan) error {
		told = true
		return sendPlan(opts.Comm, p)
	}
	defer func() {
		if err != nil && !told {
			if terr := tell(resumePlan{Err: err.Error()}); terr == nil {
				err = &JobError{err}
			}
		}
	}()
	if _, err := ReadRunInfo(dir); err != nil { // before locking: a clear error for what is no run
		return nil, err
	}
	lock := opts.Lock
	if lock == nil {
		var err error
		if lock, err = LockRun(dir); err != nil {
			return nil, err
		}
		defer lock.Unlock()
	} else if err := lock.holds(dir); err != nil {
		return nil, err
	}
	info, err := ReadRunInfo(dir)
	if err != nil {
		return nil, err
	}
	if kind := opts.Objective.Kind; info.Kind != kind {
		if info.Kind == "" {
			return nil, fmt.Errorf("train: %s is a plain training run, not a %s run", dir, kind)
		}
		return nil, fmt.Errorf("train: %s is a %s run: resume it with `sentibench %s --resume %s`", dir, info.Kind, info.Kind, dir)
	}
	// A finished run is left as it is, unless asked to test it again. (A log that cannot be
	// read is no finished run: the resume rewrites it from the checkpoint.)
	hooks.fill()
	var prior *FinalRecord
	if rl, err := ReadRunLog(dir); err == nil && rl.Finished {
		// Its checkpoint is checked all the same: a damaged one is reported, not passed over.
		if ck, err := openCheckpointDir(dir, LastDir); err == nil {
			if _, err := readState(ck); err != nil {
				return nil, err
			}
		}
		if !opts.Resume.Retest {
			if !told {
				if err := tell(resumePlan{Finished: true}); err != nil {
					return nil, err
				}
			}
			fmt.Fprintf(hooks.Log, "%s has finished (best epoch %d, test accuracy %.2f%%); nothing to resume (--retest tests it again)\n",
				dir, rl.Final.BestEpoch, 100*rl.Final.TestAcc)
			return &Result{RunDir: dir, Epochs: rl.Epochs, Final: rl.Final}, nil
		}
		if _, err := openCheckpointDir(dir, LastDir); err != nil { // a new start would rewrite the log
			return nil, fmt.Errorf("train: %s cannot be tested again: %w", dir, err)
		}
		prior = &rl.Final
	}
	cfg := info.Config
	cfg.RunDir = dir
	if len(cfg.Labels) == 0 { // the order the run found (runs before --labels recorded it only there)
		cfg.Labels = info.Labels
	}
	if opts.Resume.Threads > 0 {
		cfg.Threads = opts.Resume.Threads
	}
	if !told {
		if err := tell(resumePlan{Config: cfg}); err != nil {
			return nil, err
		}
	}
	t, err := newTrainer(ctx, cfg, hooks, opts, true)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if prior != nil {
		if !t.trained() {
			return nil, fmt.Errorf("train: %s: the run log records a test but the checkpoint's training has not finished (damaged checkpoint?)", dir)
		}
		t.priorSeconds = prior.TotalSeconds // the time of the processes up to the recorded test
		// The event files hold the recorded test's figures: the retest leaves them as they are.
		if t.tb != nil {
			err := t.tb.Close()
			t.tb = nil
			if err != nil {
				return nil, err
			}
		}
	}
	return t.run(ctx)
}

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
	comm    Comm
	gradBuf []float32 // the allreduce's buffer
	stopAll bool      // a rank was interrupted: every rank stops after this step
	reduced allreduceTimes
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

// run trains the remaining epochs, then tests the best checkpoint.
func (t *trainer) run(ctx context.Context) (*Result, error) {
	for !t.trained() {
		rec, err := t.epoch(ctx)
		if err != nil {
			return nil, err
		}
		if t.hooks.OnEpoch != nil {
			if err := t.hooks.OnEpoch(rec); err != nil {
				return nil, err
			}
		}
		if t.cfg.Patience > 0 && t.st.BadEpochs >= t.cfg.Patience && t.st.Epoch < t.cfg.Epochs {
			fmt.Fprintf(t.hooks.Log, "Early stopping: no better valid loss for %d epochs\n", t.st.BadEpochs)
			t.st.Done = true
			if err := t.saveLast(); err != nil {
				return nil, err
			}
		}
	}
	return t.test()
}

// epoch trains one epoch (or the rest of one, after a mid-epoch checkpoint), validates, and
// writes the checkpoints and the run log line.
func (t *trainer) epoch(ctx context.Context) (EpochRecord, error) {
	st, cfg, meter := t.st, t.cfg, t.hooks.Meter
	epoch := st.Epoch + 1
	rngAtStart := t.ds.rng.State
	batches := data.BucketBatches(t.ds.train, t.ds.lengths, cfg.BatchSize, t.ds.rng)
	if cfg.MaxBatches > 0 && len(batches) > cfg.MaxBatches {
		batches = batches[:cfg.MaxBatches]
	}
	shares := batches // this rank's part of each global batch (all of it with one rank)
	if t.parallel() {
		shares = make([][]int, len(batches))
		for i, b := range batches {
			shares[i] = share(b, t.comm.Rank(), t.comm.Size())
		}
	}
	sums, first := st.Partial, st.Batch
	st.Partial, st.Batch = partialEpoch{}, 0

	meter.StartEpoch(epoch)
	began := time.Now()
	bar := progress.New(t.hooks.Progress, progress.Options{Label: fmt.Sprintf("Epoch %02d", epoch), Unit: "batches",
		Total: int64(len(batches)), Mode: t.hooks.ProgressMode})
	bar.Start(int64(first))
	loss := newLabelLoss(t.ds.outputs)
	for i := first; i < len(batches); i++ {
		if t.interrupted(ctx) {
			bar.Done()
			sums.Seconds += time.Since(began).Seconds()
			st.Batch, st.Partial, st.DataRNG = i, sums, rngAtStart
			if err := t.saveLast(); err != nil {
				return EpochRecord{}, err
			}
			return EpochRecord{}, fmt.Errorf("%w in epoch %d after %d of %d batches; checkpoint saved, resume with --resume %s",
				ErrInterrupted, epoch, i, len(batches), t.dir)
		}
		work, b, res, err := t.step(ctx, shares[i], len(batches[i]), loss)
		if errors.Is(err, errNotFinite) {
			bar.Done()
			return EpochRecord{}, fmt.Errorf("train: the loss became %v in epoch %d, batch %d; stopping (%s; try a lower --lr or --clip-norm)",
				res.Loss, epoch, i+1, t.checkpointNote())
		}
		if err != nil {
			return EpochRecord{}, fmt.Errorf("train: epoch %d, batch %d: %w", epoch, i+1, err)
		}

		sums.add(b)
		if work.tokens > 0 { // this rank's work
			meter.AddWork(work.tokens, work.flops)
		}
		t.optSteps++
		if err := t.logStep(res.Loss); err != nil {
			return EpochRecord{}, err
		}
		bar.Add(1)
		bar.SetNote(fmt.Sprintf("loss %.3f, acc %.2f%%", sums.LossSum/float64(max(sums.LossN, 1)), 100*float64(sums.Correct)/float64(max(sums.N, 1))))
	}
	bar.Done()
	trainSeconds := sums.Seconds + time.Since(began).Seconds()

	meter.Begin(PhaseValid)
	valid, err := t.evaluate(t.ds.valid)
	meter.End(PhaseValid)
	if err != nil {
		return EpochRecord{}, fmt.Errorf("train: validation after epoch %d: %w", epoch, err)
	}
	stats := meter.EndEpoch()
	stats.Seconds += sums.Seconds // the part of an interrupted epoch done before the resume
	if stats.PeakRSSMiB == 0 {
		stats.PeakRSSMiB = processPeakRSSMiB()
	}
	rec := EpochRecord{
		Epoch: epoch, TrainLoss: sums.LossSum / float64(max(sums.LossN, 1)), TrainAcc: float64(sums.Correct) / float64(max(sums.N, 1)),
		ValidLoss: valid.Loss, ValidAcc: valid.Acc, TrainBatches: len(batches),
		TrainSeconds: trainSeconds, ValidSeconds: stats.Seconds - trainSeconds, EpochStats: stats,
		LR: t.lastLR(), ValidMetrics: t.classMetrics(valid),
	}
	rec.Tokens = sums.Tokens
	if t.tb != nil { // before the checkpoint: a resume drops what follows the checkpoint's steps
		if err := t.tb.OnEpoch(rec); err != nil {
			return rec, err
		}
	}

	// Checkpoints: best when the valid loss improved, last always (after best, so that a crash
	// in between repeats the epoch rather than losing its best weights).
	st.Epoch, st.DataRNG = epoch, t.ds.rng.State
	st.Records = append(st.Records, rec)
	if math.IsNaN(valid.Loss) || math.IsInf(valid.Loss, 0) {
		return rec, fmt.Errorf("train: the validation loss became %v after epoch %d; stopping (%s)",
			valid.Loss, epoch, t.checkpointNote())
	}
	if st.BestEpoch == 0 || valid.Loss < st.BestValidLoss {
		st.BestEpoch, st.BestValidLoss, st.BestValidAcc, st.BadEpochs = epoch, valid.Loss, valid.Acc, 0
		if err := t.eng.Pull(); err != nil {
			return rec, err
		}
		if err := t.saveBest(epoch, valid.Loss); err != nil {
			return rec, err
		}
	} else {
		st.BadEpochs++
	}
	if err := t.saveLast(); err != nil {
		return rec, err
	}
	if err := t.appendRunLog(rec); err != nil {
		return rec, err
	}
	fmt.Fprintln(t.hooks.Log, EpochLine(rec))
	t.logAllreduce() // data-parallel runs
	return rec, nil
}

// errNotFinite is step's error for a loss that is NaN or infinite (the weights are not updated).
var errNotFinite = errors.New("the loss is not finite")

// step trains the model on one batch, as five calls: the batch's input, its loss (the
// objective), the forward and backward passes, a check that the loss is finite, and the
// optimiser's update. With gradient accumulation (Config.GradAccum) the first three run once per
// micro-batch and the gradients add up (accumulate) before the one update. recipe is the
// recipe's loss of the labels, reused from batch to batch.
//
// On a data-parallel run, batch is this rank's share of a global batch of globalN reviews (it
// may be empty), and between the backward pass and the update one allreduce sums the ranks'
// gradients and figures (allreduceStep); the sums returned are then the global batch's. The
// work returned is this rank's own (none for an empty share).
func (t *trainer) step(ctx context.Context, batch []int, globalN int, recipe *labelLoss) (stepWork, batchSums, nn.StepResult, error) {
	meter := t.hooks.Meter
	var (
		res    nn.StepResult
		work   stepWork
		labels []float32
		acc    *gradAccumulator
		micro  [][]int
	)
	if len(batch) > 0 {
		micro = microBatches(batch, t.cfg.GradAccum)
	}
	if len(micro) > 1 {
		acc = t.newGradAccumulator()
	}
	for _, mb := range micro {
		meter.Begin(PhaseData)
		in, mbLabels, err := t.ds.input(mb)
		meter.End(PhaseData)
		if err != nil {
			return work, batchSums{}, res, err
		}
		loss, err := t.loss(mb, mbLabels, recipe)
		if err != nil {
			return work, batchSums{}, res, err
		}
		if res, err = t.eng.Step(in, loss, nn.Train, t.rng); err != nil {
			return work, batchSums{}, res, err
		}
		meter.Add(PhaseForward, seconds(res.BuildSeconds+res.ForwardSeconds))
		meter.Add(PhaseBackward, seconds(res.BackwardSeconds))
		work.tokens += in.Tokens()
		work.flops += nn.TrainFLOPs(t.model.Config(), in)
		labels = append(labels, mbLabels...)
		if acc != nil {
			acc.add(res, float64(len(mb))/float64(len(batch)))
		}
	}
	if acc != nil {
		res = acc.finish()
	}
	sums := sumsOf(work.tokens, labels, res)
	if t.parallel() {
		var err error
		if t.stopAll, err = t.allreduceStep(&sums, len(batch), globalN, ctx.Err() != nil); err != nil {
			return work, sums, res, err
		}
		res.Loss = sums.lossSum / float64(max(sums.lossN, 1)) // the global batch's mean
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return work, sums, res, errNotFinite
	}
	meter.Begin(PhaseOptimizer)
	err := t.eng.Update()
	meter.End(PhaseOptimizer)
	return work, sums, res, err
}

// stepWork is what a step computed: its real tokens and its matrix products' FLOPs.
type stepWork struct {
	tokens int
	flops  float64
}

// loss is a training batch's loss: the objective's, or the recipe's loss of the labels.
func (t *trainer) loss(batch []int, labels []float32, recipe *labelLoss) (nn.Loss, error) {
	if t.obj.TrainLoss != nil {
		return t.obj.TrainLoss(batch, labels)
	}
	return recipe.of(labels), nil
}

// labelLoss is the recipe's loss of a batch's labels: binary cross-entropy on the one logit of
// a binary model (the recipe), softmax cross-entropy on the K logits of a K-class model.
type labelLoss struct {
	outputs int
	bce     *nn.BCEWithLogits
}

func newLabelLoss(outputs int) *labelLoss {
	return &labelLoss{outputs: outputs, bce: nn.NewBCEWithLogits(nil)}
}

// of returns the loss of labels (class ids, as the batch holds them); it is valid until the
// next call.
func (l *labelLoss) of(labels []float32) nn.PerExampleLoss {
	if l.outputs == 1 {
		l.bce.Targets = labels
		return l.bce
	}
	ids := make([]int, len(labels)) // the loss keeps them for its graph's backward pass
	for i, y := range labels {
		ids[i] = int(y)
		if y != y { // NaN: an unlabelled example, which the loss refuses by name
			ids[i] = data.NoLabel
		}
	}
	return nn.NewSoftmaxCrossEntropy(ids)
}

// evaluate runs the model over a split in evaluation mode (dropout off).
// On a data-parallel run the ranks share the batches (evaluateShared).
func (t *trainer) evaluate(indices []int) (Metrics, error) {
	if t.parallel() {
		return t.evaluateShared(indices)
	}
	return evaluate(t.eng, t.ds, indices, t.cfg.BatchSize)
}

func evaluate(eng engine, ds *dataset, indices []int, batchSize int) (Metrics, error) {
	tally, err := evaluateBatches(eng, ds, data.EvalBatches(indices, ds.lengths, batchSize), batchSize)
	if err != nil {
		return Metrics{}, err
	}
	return tally.Metrics(), nil
}

// evaluateBatches tallies the model's predictions over the given evaluation batches.
func evaluateBatches(eng engine, ds *dataset, batches [][]int, batchSize int) (*Tally, error) {
	tally := NewTally(max(len(ds.classes), 2), ds.values)
	recipe := newLabelLoss(ds.outputs)
	losses := make([]float64, 0, batchSize)
	for _, batch := range batches {
		in, labels, err := ds.input(batch)
		if err != nil {
			return nil, err
		}
		res, err := eng.Step(in, recipe.of(labels), nn.Eval, nil)
		if err != nil {
			return nil, err
		}
		losses = losses[:0]
		for _, l := range res.PerExample {
			losses = append(losses, float64(l))
		}
		tally.AddBatch(res.Logits, labels, losses)
	}
	return tally, nil
}

// test evaluates the best checkpoint on the test split and writes the run log's last line.
func (t *trainer) test() (*Result, error) {
	st := t.st
	if st.BestEpoch > 0 {
		if err := t.loadBest(); err != nil {
			return nil, err
		}
		if err := t.eng.Push(); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintln(t.hooks.Log, "warning: no finite validation loss; testing the last epoch's weights")
	}
	t0 := time.Now()
	m, err := t.evaluate(t.ds.test)
	if err != nil {
		return nil, fmt.Errorf("train: test: %w", err)
	}
	total := t.seconds()
	final := FinalRecord{
		TestLoss: m.Loss, TestAcc: m.Acc, BestEpoch: st.BestEpoch, BestValidLoss: st.BestValidLoss, BestValidAcc: st.BestValidAcc,
		TotalSeconds: total, TestSeconds: time.Since(t0).Seconds(), PeakRSSMiB: processPeakRSSMiB(),
		Model: t.cfg.Kind, Dropout: t.cfg.Dropout, Params: countParams(t.model), Epochs: st.Epoch, BatchSize: t.cfg.BatchSize,
		Seed: t.cfg.Seed, Device: t.cfg.Device, Threads: t.cfg.Threads, Sizes: t.ds.sizes(), Version: Version,
		TestMetrics: t.classMetrics(m),
	}
	// The whole log at once: a retest replaces the recorded test only when the new one is there.
	if !t.writes() {
		return &Result{RunDir: t.dir, Epochs: st.Records, Final: final, Test: m}, nil
	}
	if err := writeRunLog(t.dir, st.Records, &final); err != nil {
		return nil, err
	}
	if t.tb != nil {
		if err := t.tb.Final(final); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(t.hooks.Log, TestLine(final))
	return &Result{RunDir: t.dir, Epochs: st.Records, Final: final, Test: m}, nil
}

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

// rewriteRunLog writes the run log from the checkpoint's records (atomically), so that it
// never holds an epoch that the checkpoint does not.
func (t *trainer) rewriteRunLog() error {
	if !t.writes() {
		return nil
	}
	return writeRunLog(t.dir, t.st.Records, nil)
}

func (t *trainer) appendRunLog(rec any) error {
	if !t.writes() {
		return nil
	}
	return appendRunLog(t.dir, rec)
}

// EpochLine formats an epoch as torch_ref.py prints it; a run of more than two classes adds the
// valid split's macro-F1 (and MAE, for ordinal classes) after its accuracy.
func EpochLine(r EpochRecord) string {
	mins, secs := int(r.Seconds)/60, int(r.Seconds)%60
	return fmt.Sprintf("Epoch: %02d | Epoch Time: %dm %ds | Train Loss: %.3f | Train Acc: %.2f%% | Val. Loss: %.3f | Val. Acc: %.2f%%%s | Peak RSS: %.0f MiB",
		r.Epoch, mins, secs, r.TrainLoss, 100*r.TrainAcc, r.ValidLoss, 100*r.ValidAcc, r.ValidMetrics.line("Val."), r.PeakRSSMiB)
}

// TestLine formats the final record as the run's last line; a run of more than two classes adds
// the test split's macro-F1 (and MAE, for ordinal classes) after its accuracy.
func TestLine(f FinalRecord) string {
	mins, secs := int(f.TotalSeconds)/60, int(f.TotalSeconds)%60
	return fmt.Sprintf("Test (best epoch %02d, Val. Loss: %.3f) | Test Loss: %.3f | Test Acc: %.2f%%%s | Total Time: %dm %ds | Peak RSS: %.0f MiB",
		f.BestEpoch, f.BestValidLoss, f.TestLoss, 100*f.TestAcc, f.TestMetrics.line("Test"), mins, secs, f.PeakRSSMiB)
}

// line is the part of an epoch or test line that m adds: " | Val. Macro-F1: 0.512 | Val. MAE:
// 1.234" ("" for nil: a binary run).
func (m *ClassMetrics) line(prefix string) string {
	if m == nil {
		return ""
	}
	s := fmt.Sprintf(" | %s Macro-F1: %.3f", prefix, m.MacroF1)
	if m.MAE != nil {
		s += fmt.Sprintf(" | %s MAE: %.3f", prefix, *m.MAE)
	}
	return s
}

// classMetrics is what the run log records of a pass's class figures: all of them for a run of
// more than two classes, none (nil) for a binary run, whose log stays the recipe's.
func (t *trainer) classMetrics(m Metrics) *ClassMetrics {
	if len(t.ds.classes) <= 2 {
		return nil
	}
	return &m.ClassMetrics
}

// countCorrect counts the right predictions among the labelled examples (NaN: no label). The
// logits are one per example (binary: right when it is above 0 for label 1) or a row of K per
// example (right when the largest is the label's).
func countCorrect(logits, labels []float32) (correct, labelled int) {
	if len(logits) == len(labels) {
		for i, z := range logits {
			if labels[i] != labels[i] {
				continue
			}
			labelled++
			if (z > 0) == (labels[i] > 0.5) {
				correct++
			}
		}
		return correct, labelled
	}
	k := len(logits) / max(len(labels), 1)
	for i, y := range labels {
		if y != y {
			continue
		}
		labelled++
		if nn.Predicted(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	return correct, labelled
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
