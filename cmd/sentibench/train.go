package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/profile"
	"github.com/sentibench/sentibench/train"
)

// exitError carries a specific exit code (130 for a run stopped by SIGINT).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// outputFlags are the flags every long-running command shares.
type outputFlags struct {
	quiet    bool
	progress string
}

func (o *outputFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but errors and the final result")
	cmd.Flags().StringVar(&o.progress, "progress", "auto", "progress display: auto (a bar on a terminal, plain lines otherwise), bar, lines or quiet")
}

// hooks returns the trainer's hooks for these flags: the profiler's meter, the epoch lines on
// stdout, the progress on stderr.
func (o *outputFlags) hooks(cmd *cobra.Command) (train.Hooks, func(), error) {
	mode, err := progress.ParseMode(o.progress)
	if err != nil {
		return train.Hooks{}, nil, usageError{err.Error()}
	}
	if o.quiet {
		mode = progress.Quiet
	}
	var log io.Writer = cmd.OutOrStdout()
	if o.quiet {
		log = io.Discard
	}
	meter := profile.NewMeter()
	return train.Hooks{Meter: meter, Log: log, Progress: cmd.ErrOrStderr(), ProgressMode: mode}, meter.Close, nil
}

func newTrainCmd() *cobra.Command {
	cfg := train.DefaultConfig("lstm")
	var (
		out    outputFlags
		dataF  string
		runDir string
		resume string
		retest bool
		logs   logFlags
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model (the reference recipe by default)",
		Long: `Train a model on IMDB (or your own data) as ../shared/bench/RECIPE.md defines it: the
recipe's split, vocabulary and batches, Adam, binary cross-entropy, the best-valid-loss
checkpoint, and a final test of that checkpoint.

Data of K > 2 classes train K logits with softmax cross-entropy. The classes are the data's
labels in the order --labels names, else numbers numerically, else byte-wise; of two classes
the positive one (pos, positive, 1, true) is second, and binary data without one must be
given their order (--labels poor,good). IMDB's --target rating trains on the 8 star ratings
of its file names, rating4 on four levels of them (1-2, 3-4, 7-8, 9-10), on the same split.
The run records its classes (config.json's "labels"); a run of more than two classes adds
the macro-F1 (and, for ordinal classes, the mean absolute error) to its epoch and test lines,
and the class figures to run.jsonl.

The run directory gets config.json, vocab.txt, run.jsonl (one JSON object per epoch, then the
test), best/model.safetensors (PyTorch's parameter names) and last/ (weights, optimiser and
generator state). Ctrl-C saves a checkpoint and stops; --resume continues exactly where it left.

--log-format json writes the report on stdout as JSON records, one a line, for log
pipelines: the run directory, the data, the model, each epoch and the test, their figures as
typed fields (epoch, train_loss, valid_acc, seconds, peak_rss_mib, test_acc, ...); the
progress display stays on stderr.`,
		Example: `  sentibench train --model lstm --dropout 0.2
  sentibench train --model cnn --data sample --epochs 2
  sentibench train --resume runs/lstm-20261125-101500
  sentibench train --model cnn --data sample --log-format json --progress quiet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logs.logger(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			hooks, closeMeter, err := out.hooks(cmd)
			if err != nil {
				return err
			}
			defer closeMeter()
			var records *trainRecords // the JSON records, with --log-format json
			if logs.json() {
				records = newTrainRecords(logger)
				defer records.flush()
				if !out.quiet {
					hooks.Log, hooks.OnEpoch = records, records.epoch
				}
			}
			comm, closeComm, err := openRanks(&hooks) // under mpirun: this rank of the job (mpi.go)
			if err != nil {
				return err
			}
			defer closeComm()
			if comm.Rank() != 0 {
				records = nil
			}
			ctx := cmd.Context()
			var res *train.Result
			if resume != "" {
				if cmd.Flags().NFlag() > countSet(cmd, "resume", "quiet", "progress", "threads", "retest", "log-format") {
					return usageError{"--resume continues a run with its own settings: give no other training flags (but --threads, --retest and the output's)"}
				}
				ro := train.ResumeOptions{Retest: retest}
				if cmd.Flags().Changed("threads") {
					ro.Threads = cfg.Threads
				}
				res, err = train.ResumeWith(ctx, resume, hooks, train.Options{Resume: ro, Comm: comm})
			} else {
				if retest {
					return usageError{"--retest: it tests a finished run again; give it with --resume RUN"}
				}
				if cfg.Data, err = data.Resolve(ctx, data.Locator{Path: dataF, Env: data.EnvFrom(os.Getenv),
					Progress: cmd.ErrOrStderr(), ProgressMode: hooks.ProgressMode}); err != nil {
					return err
				}
				if cmd.Flags().Changed("labels") && len(cfg.Labels) == 0 {
					return usageError{"--labels: want the class names in id order, comma-separated (leave the flag out for the data's own order)"}
				}
				for i, l := range cfg.Labels { // "neg, pos" names neg and pos
					cfg.Labels[i] = strings.TrimSpace(l)
				}
				if !cmd.Flags().Changed("dropout") { // the model is known now
					cfg.Dropout = train.DefaultDropout(cfg.Kind)
				}
				cfg.RunDir = runDir
				if cfg.RunDir == "" {
					cfg.RunDir = defaultRunDir(cfg.Kind)
				}
				if err := cfg.Check(); err != nil { // before naming a run directory that will not exist
					return configError(cmd, err)
				}
				fmt.Fprintf(hooks.Log, "Run directory: %s\n", cfg.RunDir)
				res, err = train.RunWith(ctx, cfg, hooks, train.Options{Comm: comm})
			}
			if err != nil {
				// A warmup beyond the run's steps is known once the data are read: a usage error.
				return abortRanks(cmd, comm, err, runError(configError(cmd, err)))
			}
			if comm.Rank() != 0 {
				return nil // rank 0 reports
			}
			if records != nil {
				records.flush()
				records.final(res.RunDir, res.Final)
			} else if out.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: test accuracy %.2f%%, test loss %.3f (best epoch %d)\n",
					res.RunDir, 100*res.Final.TestAcc, res.Final.TestLoss, res.Final.BestEpoch)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Kind, "model", cfg.Kind, "model: lstm, cnn or bigru")
	f.Float64Var(&cfg.Dropout, "dropout", 0.5, "every dropout of the model (default: 0.5 for lstm and cnn, 0.25 for bigru)")
	f.StringVar(&dataF, "data", "", "data: the IMDB archive or directory, \"sample\", a CSV/TSV/JSONL file or a folder per label (default: $SENTIBENCH_DATA, else the cached or downloaded official archive)")
	f.StringVar(&runDir, "run", "", "run directory (default runs/MODEL-TIMESTAMP)")
	f.StringVar(&resume, "resume", "", "continue the run in this directory after its last checkpoint (a finished run is left as it is)")
	f.BoolVar(&retest, "retest", false, "with --resume of a finished run: test its best checkpoint again and replace the recorded test (kept if the new test fails)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the split, batch order, initial weights and dropout")
	f.IntVar(&cfg.VocabSize, "vocab-size", cfg.VocabSize, "most frequent words kept in the vocabulary")
	f.IntVar(&cfg.Limit, "limit", 0, "take a seeded sample of this many reviews per IMDB folder (as torch_ref.py --limit)")
	f.StringSliceVar(&cfg.Labels, "labels", nil, "the classes in id order, comma-separated, each a label of the data (default: numbers numerically, else byte-wise, a binary data set's positive class second)")
	f.StringVar(&cfg.Target, "target", "", "IMDB: what the reviews are labelled with: sentiment (neg, pos: the recipe), rating (the 8 star ratings) or rating4 (1-2, 3-4, 7-8, 9-10)")
	addTrainingFlags(f, &cfg)
	f.StringVar(&cfg.Encoder, "encoder", "", "bigru: the frozen encoder, a Hugging Face model directory or hub id")
	f.StringVar(&cfg.FeatureCache, "feature-cache", "", "bigru: directory of the encoder feature caches (default: in the cache directory), or one cache's directory (refused when built with other settings)")
	f.StringVar(&cfg.Pool, "pool", "", "bigru: what the classifier reads: last (the final states, the recipe) or concat (final states, mean and max over time)")
	f.IntSliceVar(&cfg.EncoderLayers, "encoder-layers", nil, "bigru: the features are the mean of these hidden states of the encoder (0: the embeddings, 1..L its layers, -1 the last; e.g. 4,5), not its last one (the recipe)")
	f.IntVar(&cfg.TruncateHead, "truncate-head", 0, "bigru: truncate a review longer than the encoder's maximum to its first N word pieces and its last ones (head+tail; 0: its first ones, the recipe)")
	out.add(cmd)
	addConfigFlag(cmd)
	logs.add(cmd, false)
	return cmd
}

// addTrainingFlags registers the training settings that 'train' and 'distill' (for its
// student) share.
func addTrainingFlags(f *pflag.FlagSet, cfg *train.Config) {
	f.StringVar(&cfg.TextColumn, "text-column", "", "the text column/field of a CSV/TSV/JSONL file (default text)")
	f.StringVar(&cfg.LabelColumn, "label-column", "", "the label column/field of a CSV/TSV/JSONL file (default label)")
	f.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs")
	f.IntVar(&cfg.BatchSize, "batch-size", 0, "batch size (default 64, or 128 for bigru)")
	f.Float64Var(&cfg.LR, "lr", cfg.LR, "Adam learning rate")
	f.IntVar(&cfg.Patience, "patience", 0, "stop after this many epochs without a better valid loss (0: never)")
	f.Float64Var(&cfg.ClipNorm, "clip-norm", 0, "clip the gradients' global L2 norm to this (0: no clipping)")
	f.IntVar(&cfg.MaxLen, "max-len", 0, fmt.Sprintf("truncate longer reviews to their first N tokens (default %d, which keeps every IMDB review whole; word models)", train.DefaultMaxLen))
	f.StringVar(&cfg.GloVe, "glove", "", "initialise the word embedding from this GloVe- or word2vec-format text file (see 'sentibench wordvec')")
	f.BoolVar(&cfg.FreezeEmbedding, "freeze-embedding", false, "keep the (GloVe) embedding fixed")
	f.IntVar(&cfg.Hidden, "hidden", 0, "recurrent hidden size (default: the recipe's 256)")
	f.IntVar(&cfg.Layers, "layers", 0, "recurrent layers (default: the recipe's 2)")
	f.IntVar(&cfg.EmbedDim, "embedding-dim", 0, "word embedding size (default: the recipe's 100)")
	f.IntVar(&cfg.Filters, "filters", 0, "CNN filters per width (default: the recipe's 100)")
	f.IntVar(&cfg.MaxBatches, "max-batches", 0, "cap the training batches of each epoch (timing runs)")
	f.StringVar(&cfg.LRSchedule, "lr-schedule", "", "learning-rate schedule per optimiser step, as transformers.get_scheduler: "+scheduleList()+" (default constant, the recipe)")
	f.IntVar(&cfg.WarmupSteps, "warmup-steps", 0, "linear warmup from 0 to --lr over this many optimiser steps (not with --warmup-ratio)")
	f.Float64Var(&cfg.WarmupRatio, "warmup-ratio", 0, "linear warmup over this fraction of the run's optimiser steps, rounded up (not with --warmup-steps)")
	f.Float64Var(&cfg.WeightDecay, "weight-decay", 0, "decoupled weight decay, as torch.optim.AdamW (0: none, the recipe)")
	f.IntVar(&cfg.GradAccum, "grad-accum", 0, "split each batch into N micro-batches whose gradients add up to one update (the same update in less memory; default 1)")
	f.StringVar(&cfg.TensorBoard, "tensorboard", "", "directory of the run's TensorBoard event files (default RUN/tb; none: no event files)")
	f.StringVar(&cfg.Device, "device", cfg.Device, "cpu or cuda")
	f.IntVar(&cfg.Threads, "threads", 0, "worker threads (default: all cores)")
	f.StringVar(&cfg.BLAS, "blas", os.Getenv("SENTIBENCH_BLAS"), "CPU BLAS: auto, openblas, go, go-avx2, gonum or a library path (default $SENTIBENCH_BLAS, else auto)")
}

// scheduleList names the learning-rate schedules: "a, b or c".
func scheduleList() string {
	var kinds []string
	for _, k := range nn.ScheduleKinds() {
		kinds = append(kinds, string(k))
	}
	return orList(kinds)
}

// runError maps a run's error to the command's: a run stopped by SIGINT exits with 130.
func runError(err error) error {
	if errors.Is(err, train.ErrInterrupted) {
		return exitError{130, err}
	}
	return err
}

// defaultRunDir names a new run directory: runs/NAME-TIMESTAMP.
func defaultRunDir(name string) string {
	return filepath.Join("runs", fmt.Sprintf("%s-%s", name, time.Now().Format("20060102-150405")))
}

// countSet counts how many of the named flags were set.
func countSet(cmd *cobra.Command, names ...string) int {
	n := 0
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			n++
		}
	}
	return n
}
