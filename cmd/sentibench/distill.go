package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/distill"
	"github.com/sentibench/sentibench/train"
)

func newDistillCmd() *cobra.Command {
	cfg := distill.DefaultConfig("", "cnn")
	st := &cfg.Student
	var (
		out    outputFlags
		dataF  string
		runDir string
		resume string
	)
	cmd := &cobra.Command{
		Use:   "distill --teacher RUN_DIR --student cnn|lstm",
		Short: "Distil a trained teacher run into a (smaller) student model",
		Long: `Train a student model from a trained teacher run (knowledge distillation). The teacher's
logits over the transfer set are computed once, in evaluation mode, and cached in the student's
run directory (teacher_logits.safetensors); --teacher-logits RUN_DIR reuses an earlier run's. A
bigru teacher trained on a feature cache runs its head only, over cached encoder features: its own
cache for the train reviews, and a cache of the unlabelled and augmented reviews, built on the
first distillation (resumable, with progress) and reused by the next. The student then trains as
'sentibench train' does (same checkpoints, resume, profiler), on the loss

  kd:  alpha * BCE(student, label) + (1 - alpha) * T^2 * KL(sigmoid(teacher/T) || sigmoid(student/T))
       (Hinton et al. 2015)
  mse: alpha * BCE(student, label) + (1 - alpha) * (student - teacher)^2   (Tang et al. 2019)

for a binary teacher (one logit per text), and for a teacher of K > 2 classes (K logits)

  kd:  alpha * CE(student, label) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))
  mse: alpha * CE(student, label) + (1 - alpha) * ||student - teacher||^2   (summed over the K logits)

with CE the softmax cross-entropy. Unlabelled transfer examples (--unsup reviews, --augment
copies) have the soft term only. The student learns the teacher's classes: its data must have
the teacher's class names, in the teacher's order.

The transfer set is the train split, plus with --unsup the unlabelled reviews of IMDB's
train/unsup (e.g. ../shared/data/imdb/aclImdb_v1_unsup.tar.gz), plus with --augment N, N
augmented copies of each train review (Tang et al.: words masked with <unk>, n-gram samples),
all drawn from the seed. The data set, --limit, --seed and --vocab-size default to the teacher's.

It ends with a report, printed and written to RUN/distill_report.md: teacher, distilled
student and the student trained alone (--baseline RUN_DIR, or --train-baseline to train it
with the same settings and seed, without the teacher): test accuracy, parameters, checkpoint
size, reviews per second, and the share of the teacher-student gap that distillation closed.
Ctrl-C saves a checkpoint and stops; --resume continues where it left (on a finished run it
makes the report again; --throughput-reviews N then measures the throughput over N test reviews,
e.g. after a sweep run without the measure, and --threads N with N worker threads).`,
		Example: `  sentibench distill --teacher runs/lstm-1 --student cnn --train-baseline
  sentibench distill --teacher runs/lstm-1 --student cnn --filters 50 --temperature 3 --alpha 0.3 \
      --unsup ../shared/data/imdb/aclImdb_v1_unsup.tar.gz --baseline runs/cnn-1
  sentibench distill --resume runs/distill-cnn-20261125-101500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			th, closeMeter, err := out.hooks(cmd)
			if err != nil {
				return err
			}
			defer closeMeter()
			comm, closeComm, err := openRanks(&th) // under mpirun: this rank of the job (mpi.go)
			if err != nil {
				return err
			}
			defer closeComm()
			hooks := distill.Hooks{Hooks: th}
			opts := distill.Options{Comm: comm}
			ctx := cmd.Context()
			var res *distill.Result
			if resume != "" {
				if cmd.Flags().NFlag() > countSet(cmd, "resume", "quiet", "progress", "threads", "throughput-reviews") {
					return usageError{"--resume continues a distillation with its own settings: give no other flags (but --threads, and --throughput-reviews for its report)"}
				}
				if cmd.Flags().Changed("threads") {
					opts.Threads = st.Threads
				}
				if cmd.Flags().Changed("throughput-reviews") {
					if cfg.ThroughputReviews <= 0 {
						return usageError{fmt.Sprintf("--throughput-reviews %d: with --resume, give the number of test reviews to measure the report's throughput on (at least 1)", cfg.ThroughputReviews)}
					}
					opts.ThroughputReviews = cfg.ThroughputReviews
				}
				res, err = distill.ResumeWith(ctx, resume, hooks, opts)
			} else {
				if cfg.Teacher == "" {
					return usageError{"--teacher RUN_DIR is required (or --resume RUN_DIR)"}
				}
				if err := studentDefaults(cmd, &cfg, dataF, th); err != nil {
					return err
				}
				if st.Data != "" { // the teacher was read: check the student's settings before its logits
					if err := st.Check(); err != nil {
						return configError(cmd, err)
					}
				}
				cfg.RunDir = runDir
				if cfg.RunDir == "" {
					cfg.RunDir = defaultRunDir("distill-" + st.Kind)
				}
				fmt.Fprintf(th.Log, "Run directory: %s\n", cfg.RunDir)
				res, err = distill.RunWith(ctx, cfg, hooks, opts)
			}
			if err != nil {
				return abortRanks(cmd, comm, err, runError(configError(cmd, err)))
			}
			if comm.Rank() != 0 {
				return nil // rank 0 reports
			}
			if out.quiet {
				fmt.Fprint(cmd.OutOrStdout(), res.Report.Text())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Teacher, "teacher", "", "the teacher's run directory (a finished run; its best checkpoint teaches)")
	f.StringVar(&st.Kind, "student", st.Kind, "the student model: cnn or lstm")
	f.StringVar(&cfg.Loss, "loss", cfg.Loss, "kd (Hinton et al.: BCE + T^2 KL of the softened outputs) or mse (Tang et al.: squared error of the logits)")
	f.Float64Var(&cfg.Temperature, "temperature", cfg.Temperature, "kd: the temperature T")
	f.Float64Var(&cfg.Alpha, "alpha", cfg.Alpha, "weight of the hard (label) loss; 1 - alpha is the teacher's")
	f.StringVar(&cfg.Unsup, "unsup", "", "add the unlabelled reviews of this archive or directory (IMDB's train/unsup) to the transfer set")
	f.IntVar(&cfg.UnsupLimit, "unsup-limit", 0, "keep a seeded sample of this many unlabelled reviews (0: all; --limit also samples them)")
	f.IntVar(&cfg.Augment.Copies, "augment", 0, "add this many augmented copies of each train review to the transfer set")
	f.Float64Var(&cfg.Augment.MaskProb, "mask-prob", cfg.Augment.MaskProb, "augmentation: probability of each word to become <unk>")
	f.Float64Var(&cfg.Augment.NgramProb, "ngram-prob", cfg.Augment.NgramProb, "augmentation: probability of a copy to keep only an n-gram")
	f.IntVar(&cfg.Augment.NgramMax, "ngram-max", 0, "augmentation: longest n-gram in words (0: up to the whole review; Tang et al.: 5)")
	f.IntVar(&cfg.TeacherBatch, "teacher-batch", cfg.TeacherBatch, "batch size of the teacher's pass over the transfer set")
	f.StringVar(&cfg.TeacherLogits, "teacher-logits", "", "start from the teacher's logits of an earlier distill run (its directory or its teacher_logits.safetensors) computed from the same teacher and transfer set, so that a sweep runs the teacher once")
	f.StringVar(&cfg.Baseline, "baseline", "", "a run of the same student trained alone, for the report")
	f.BoolVar(&cfg.TrainBaseline, "train-baseline", false, "train the student alone too (same settings and seed), in RUN/baseline, for the report")
	f.IntVar(&cfg.ThroughputReviews, "throughput-reviews", cfg.ThroughputReviews, "test reviews for the report's throughput measure (0: none); with --resume, the report of the run measured again over this many")
	f.StringVar(&runDir, "run", "", "run directory (default runs/distill-STUDENT-TIMESTAMP)")
	f.StringVar(&resume, "resume", "", "continue the distillation in this directory")

	// The student's training, as 'sentibench train'.
	f.StringVar(&dataF, "data", "", "data set (default: the teacher's)")
	f.IntVar(&st.Limit, "limit", 0, "take a seeded sample of this many reviews per IMDB folder (default: the teacher's)")
	f.Uint64Var(&st.Seed, "seed", st.Seed, "seed of the split, batch order, initial weights, dropout and transfer set (default: the teacher's)")
	f.IntVar(&st.VocabSize, "vocab-size", st.VocabSize, "most frequent words kept in the student's vocabulary (default: the teacher's)")
	f.Float64Var(&st.Dropout, "dropout", 0.5, "every dropout of the student")
	addTrainingFlags(f, st)
	out.add(cmd)
	addConfigFlag(cmd)
	return cmd
}

// studentDefaults fills the student's data settings that were not given from the teacher's.
func studentDefaults(cmd *cobra.Command, cfg *distill.Config, dataF string, th train.Hooks) error {
	teacher, err := train.ReadRunInfo(cfg.Teacher)
	if err != nil {
		return nil // distill.Run says what is wrong with the teacher
	}
	st, t := &cfg.Student, teacher.Config
	if dataF == "" {
		st.Data, st.TextColumn, st.LabelColumn = t.Data, t.TextColumn, t.LabelColumn
	} else if st.Data, err = data.Resolve(cmd.Context(), data.Locator{Path: dataF, Env: data.EnvFrom(os.Getenv),
		Progress: cmd.ErrOrStderr(), ProgressMode: th.ProgressMode}); err != nil {
		return err
	}
	if !cmd.Flags().Changed("limit") {
		st.Limit = t.Limit
	}
	if !cmd.Flags().Changed("seed") {
		st.Seed = t.Seed
	}
	if !cmd.Flags().Changed("vocab-size") {
		st.VocabSize = t.VocabSize
	}
	if !cmd.Flags().Changed("dropout") { // the student's kind is known now
		st.Dropout = train.DefaultDropout(st.Kind)
	}
	return nil
}
