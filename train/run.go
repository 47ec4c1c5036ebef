package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
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
	// bucketBytes, when > 0 (set by the tests), replaces the size of the buckets in which a
	// data-parallel run sums its gradients (defaultBucketBytes).
	bucketBytes int
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
// may be empty), and allreduces sum the ranks' gradients, in buckets that start during the
// backward pass (overlap.go), and then the figures (allreduceStep); the sums returned are then
// the global batch's. The work returned is this rank's own (none for an empty share).
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
	if t.parallel() {
		// The gradients go into the allreduce's buckets as the backward pass computes them
		// (overlap.go); with accumulation, once the micro-batches' gradients are added up.
		red := t.reducer()
		red.begin(len(batch), globalN)
		defer red.abandon() // after an error; nothing once allreduceStep has finished
		if a, ok := t.eng.(gradAnnouncer); ok && len(micro) == 1 {
			a.announceGrads(red.announce)
			defer a.announceGrads(nil)
		}
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
	backwardEnd := time.Now()
	if acc != nil {
		res = acc.finish()
	}
	sums := sumsOf(work.tokens, labels, res)
	if t.parallel() {
		var err error
		if t.stopAll, err = t.allreduceStep(&sums, ctx.Err() != nil, backwardEnd, res.BackwardSeconds); err != nil {
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
