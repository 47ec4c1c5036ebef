package distill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// Config is a distillation run: the teacher, the student's training configuration, the loss,
// the transfer set and the comparison at the end. It is saved as distill.json in the run
// directory; a resumed run reads it back from there.
type Config struct {
	// Teacher is the teacher's run directory; its best checkpoint teaches. The run must have
	// finished (its run log ends with the test).
	Teacher string `json:"teacher"`
	// Student is the student's training configuration (model kind and size, data, epochs,
	// seed, ...), as for train.Run. An empty Student.Data means the teacher's data set.
	Student train.Config `json:"student"`

	// Loss is LossKD (Hinton et al.) or LossMSE (Tang et al.). Temperature is KD's T; Alpha
	// the weight of the hard (label) term in both.
	Loss        string  `json:"loss"`
	Temperature float64 `json:"temperature"`
	Alpha       float64 `json:"alpha"`

	// Unsup is an archive or directory holding IMDB's unlabelled reviews (train/unsup, such as
	// aclImdb_v1_unsup.tar.gz): they join the transfer set (Student.Limit samples them as it
	// samples every folder). UnsupLimit > 0 keeps a seeded sample of that many.
	Unsup      string `json:"unsup,omitempty"`
	UnsupLimit int    `json:"unsup_limit,omitempty"`
	// Augment adds augmented copies of the train reviews to the transfer set.
	Augment Augment `json:"augment"`
	// TeacherBatch is the batch size of the teacher's pass over the transfer set.
	TeacherBatch int `json:"teacher_batch"`

	// Baseline is a run of the same student trained alone, to compare with; TrainBaseline
	// trains one instead (same configuration and seed, no teacher) in RunDir/baseline.
	Baseline      string `json:"baseline,omitempty"`
	TrainBaseline bool   `json:"train_baseline,omitempty"`
	// ThroughputReviews is how many test reviews the report's throughput measure classifies
	// (0: no measure).
	ThroughputReviews int `json:"throughput_reviews"`

	// RunDir is the student's run directory.
	RunDir string `json:"-"`
}

// DefaultConfig returns a distillation of the teacher run into a student of the given kind
// with the recipe's training settings: Hinton's loss at T = 2 and alpha = 0.5, the train split
// as transfer set.
func DefaultConfig(teacher, student string) Config {
	return Config{Teacher: teacher, Student: train.DefaultConfig(student), Loss: LossKD, Temperature: 2, Alpha: 0.5,
		Augment: DefaultAugment(), TeacherBatch: 64, ThroughputReviews: 1024}
}

// The files of a distillation run directory, besides the trainer's.
const (
	SettingsFile = "distill.json"
	ReportFile   = "distill_report.md"
	BaselineDir  = "baseline"
)

// Kind is the train.Objective.Kind of a distillation run.
const Kind = "distill"

// Hooks are train's hooks (where the run reports and how it measures) and how the teacher is
// opened.
type Hooks struct {
	train.Hooks
	// OpenTeacher loads the teacher when its logits are not cached (default: LoadTeacher).
	OpenTeacher func(dir string, o train.LoadOptions) (Teacher, error)
}

// Result is what a finished distillation reports.
type Result struct {
	RunDir string
	// Train is the student's training when this call trained it (nil when it had finished).
	Train *train.Result
	// Student and Baseline are the test lines of the student's and the baseline's run logs
	// (Baseline nil without one).
	Student  train.FinalRecord
	Baseline *train.FinalRecord
	Report   Report
}

// resolved fills the defaults and checks the configuration, the teacher and the baseline.
func (c Config) resolved() (Config, train.RunInfo, error) {
	var teacher train.RunInfo
	bad := func(format string, a ...any) (Config, train.RunInfo, error) {
		return c, teacher, fmt.Errorf("distill: %s", fmt.Sprintf(format, a...))
	}
	// setting refuses options that do not go together: a *train.ConfigError naming the setting,
	// which the CLI reports as a usage error naming its flag.
	setting := func(field string, value any, problem string) (Config, train.RunInfo, error) {
		return c, teacher, &train.ConfigError{Field: field, Value: value, Problem: problem, Package: "distill"}
	}
	switch c.Student.Model {
	case nn.KindCNN, nn.KindLSTM:
	case nn.KindBiGRU:
		return bad("the student must be a word model (cnn or lstm), not %s", c.Student.Model)
	default:
		return bad("unknown student model %q (want cnn or lstm)", c.Student.Model)
	}
	if c.Teacher == "" {
		return bad("no teacher run given")
	}
	abs, err := filepath.Abs(c.Teacher)
	if err != nil {
		return bad("%v", err)
	}
	c.Teacher = abs
	if teacher, err = finishedRun(c.Teacher, "teacher"); err != nil {
		return c, teacher, err
	}
	if c.Student.Data == "" {
		t := teacher.Config
		c.Student.Data, c.Student.TextColumn, c.Student.LabelColumn = t.Data, t.TextColumn, t.LabelColumn
	}
	if c.Loss == "" {
		c.Loss = LossKD
	}
	if c.TeacherBatch == 0 {
		c.TeacherBatch = 64
	}
	switch {
	case c.Loss != LossKD && c.Loss != LossMSE:
		return bad("unknown loss %q (want kd or mse)", c.Loss)
	case c.Loss == LossKD && (!(c.Temperature > 0) || math.IsInf(c.Temperature, 0)):
		return bad("temperature %v must be positive", c.Temperature)
	case !(c.Alpha >= 0 && c.Alpha <= 1):
		return bad("alpha %v is outside [0, 1]", c.Alpha)
	case c.Alpha == 1 && (c.Unsup != "" || c.Augment.Copies > 0):
		return setting("alpha", c.Alpha, "alpha 1 ignores the teacher, so unlabelled or augmented transfer examples would teach nothing")
	case c.UnsupLimit < 0:
		return bad("unsup limit %d is negative", c.UnsupLimit)
	case c.UnsupLimit > 0 && c.Unsup == "":
		return setting("unsup_limit", c.UnsupLimit, "a limit of unlabelled reviews needs their archive (--unsup)")
	case c.TeacherBatch < 1:
		return bad("teacher batch size %d", c.TeacherBatch)
	case c.ThroughputReviews < 0:
		return bad("%d throughput reviews", c.ThroughputReviews)
	case c.Baseline != "" && c.TrainBaseline:
		return setting("train_baseline", true, "give a baseline run (--baseline) or ask to train one, not both")
	}
	if err := c.Augment.check(); err != nil {
		return setting("augment", c.Augment.Copies, strings.TrimPrefix(err.Error(), "distill: "))
	}
	if c.Baseline != "" {
		if c.Baseline, err = filepath.Abs(c.Baseline); err != nil {
			return bad("%v", err)
		}
		if _, err := finishedRun(c.Baseline, "baseline"); err != nil {
			return c, teacher, err
		}
	}
	return c, teacher, nil
}

// checkTeacherEncoder makes sure that a feature-model teacher's frozen encoder is where its run
// says, before any work (train.CheckEncoder).
func checkTeacherEncoder(ctx context.Context, dir string, teacher train.RunInfo) error {
	if err := train.CheckEncoder(ctx, dir, teacher); err != nil {
		return fmt.Errorf("distill: teacher run: %w", err)
	}
	return nil
}

// finishedRun reads the configuration of a run that must have finished.
func finishedRun(dir, role string) (train.RunInfo, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return train.RunInfo{}, fmt.Errorf("distill: %s run %s does not exist", role, dir)
		}
		return train.RunInfo{}, fmt.Errorf("distill: %s run: %w", role, err)
	}
	if !st.IsDir() {
		return train.RunInfo{}, fmt.Errorf("distill: %s run %s is not a directory", role, dir)
	}
	info, err := train.ReadRunInfo(dir)
	if err != nil {
		return info, fmt.Errorf("distill: %s run: %w", role, err)
	}
	if _, ok, err := finalRecord(dir); err != nil {
		return info, fmt.Errorf("distill: %s run: %w", role, err)
	} else if !ok {
		return info, fmt.Errorf("distill: %s run %s has not finished (its %s has no test result); finish it first with `sentibench train --resume %s`",
			role, dir, train.RunLogFile, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, train.BestDir, train.WeightsFile)); err != nil {
		return info, fmt.Errorf("distill: %s run %s has no best checkpoint: %w", role, dir, err)
	}
	return info, nil
}

// finalRecord returns the test line of a run log, and whether there is one (a run without a
// run log has none).
func finalRecord(dir string) (train.FinalRecord, bool, error) {
	rl, err := train.ReadRunLog(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return train.FinalRecord{}, false, nil
	}
	if err != nil {
		return train.FinalRecord{}, false, err
	}
	return rl.Final, rl.Finished, nil
}

// Run distils the teacher into a new student in cfg.RunDir (which must not hold a run
// already): it builds the transfer set, computes (or reads back) the teacher's logits, trains
// the student with train.Run, trains or reads the baseline, and writes the report. Cancelling
// ctx stops after a checkpoint (the error wraps train.ErrInterrupted); Resume goes on.
func Run(ctx context.Context, cfg Config, hooks Hooks) (*Result, error) {
	cfg, teacher, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	if err := checkTeacherEncoder(ctx, cfg.Teacher, teacher); err != nil {
		return nil, err
	}
	if cfg.RunDir == "" {
		return nil, fmt.Errorf("distill: no run directory given")
	}
	if cfg.RunDir, err = filepath.Abs(cfg.RunDir); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	// The student's run directory, locked for the whole distillation (train.Run then uses the
	// lock rather than taking its own).
	lock, err := train.CreateRun(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	defer lock.Unlock()
	if err := writeSettings(cfg); err != nil {
		return nil, err
	}
	return run(ctx, cfg, teacher, hooks, lock)
}

// Resume continues the distillation in dir where it stopped: the teacher's logits from the
// cache (or the rest of them), the student's training after its last checkpoint, then the
// baseline and the report.
func Resume(ctx context.Context, dir string, hooks Hooks) (*Result, error) {
	p := filepath.Join(dir, SettingsFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("distill: %s is not a distillation run (no %s)", dir, SettingsFile)
		}
		return nil, fmt.Errorf("distill: %w", err)
	}
	var s settings
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("distill: %s: %w", p, err)
	}
	cfg := s.Config
	if cfg.RunDir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	cfg, teacher, err := cfg.resolved()
	if err != nil {
		return nil, fmt.Errorf("%w (settings of %s)", err, p)
	}
	if err := checkTeacherEncoder(ctx, cfg.Teacher, teacher); err != nil {
		return nil, err
	}
	lock, err := train.LockRun(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	defer lock.Unlock()
	return run(ctx, cfg, teacher, hooks, lock)
}

// settings is distill.json.
type settings struct {
	Config
	Version string `json:"version"`
}

func writeSettings(cfg Config) error {
	b, err := json.MarshalIndent(settings{Config: cfg, Version: train.Version}, "", "  ")
	if err != nil {
		return fmt.Errorf("distill: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(cfg.RunDir, SettingsFile), append(b, '\n'))
}

// run does the work of Run and Resume, skipping what is done.
// lock is the student's run directory's lock, held by the caller.
func run(ctx context.Context, cfg Config, teacher train.RunInfo, hooks Hooks, lock *train.RunLock) (*Result, error) {
	fill(&hooks)
	dir := cfg.RunDir
	res := &Result{RunDir: dir}
	log := hooks.Log
	fmt.Fprintf(log, "Teacher: %s (%s, test accuracy %s)\n", cfg.Teacher, describeModel(teacher.Model), teacherAcc(cfg.Teacher))

	// The transfer set and the teacher's logits over it.
	ts, err := buildTransfer(ctx, cfg, hooks.Hooks)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(teacher.Labels, ts.corpus.Classes) {
		return nil, fmt.Errorf("distill: the teacher's classes %q are not the student's data's %q", teacher.Labels, ts.corpus.Classes)
	}
	fmt.Fprintf(log, "Transfer set: %s train + %s unlabelled + %s augmented = %s reviews\n",
		group(ts.train), group(ts.unsup), group(ts.augmented), group(len(ts.texts)))
	lo := train.LoadOptions{Threads: cfg.Student.Threads, BLAS: cfg.Student.BLAS}
	openTeacher := func() (Teacher, error) { return hooks.OpenTeacher(cfg.Teacher, lo) }
	logits, err := teacherLogits(ctx, dir, cfg, ts, openTeacher, hooks.Hooks)
	if err != nil {
		return nil, err
	}

	// The student.
	// A run log that cannot be read (cut short by a kill) is no finished run: the resume
	// rewrites it from the checkpoint.
	final, done, _ := finalRecord(dir)
	if done {
		fmt.Fprintf(log, "Student: %s has finished (test accuracy %.2f%%)\n", dir, 100*final.TestAcc)
	} else {
		obj := train.Objective{Kind: Kind, ExtraTrain: ts.extra, TrainLoss: lossHook(cfg, ts, logits)}
		fmt.Fprintf(log, "Student: %s, %s\n", cfg.Student.Model, describeLoss(cfg))
		if res.Train, err = trainStudent(ctx, cfg.Student, dir, hooks.Hooks, train.Options{Objective: obj, Lock: lock}); err != nil {
			return nil, err
		}
		res.Student = res.Train.Final
	}
	if done {
		res.Student = final
	}

	// The baseline, then the report.
	baseline := cfg.Baseline
	if cfg.TrainBaseline {
		baseline = filepath.Join(dir, BaselineDir)
		fr, err := trainBaseline(ctx, cfg, baseline, hooks.Hooks)
		if err != nil {
			return nil, err
		}
		res.Baseline = &fr
	} else if baseline != "" {
		fr, _, err := finalRecord(baseline)
		if err != nil {
			return nil, fmt.Errorf("distill: baseline: %w", err)
		}
		res.Baseline = &fr
	}
	rep, err := makeReport(ctx, cfg, ts, baseline, log)
	if err != nil {
		return nil, err
	}
	res.Report = rep
	if err := atomicfile.WriteFile(filepath.Join(dir, ReportFile), []byte(rep.Markdown())); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	fmt.Fprintf(log, "\n%s\nReport written to %s\n", rep.Text(), filepath.Join(dir, ReportFile))
	return res, nil
}

// fill sets the default hooks (train's, and the teacher's loader).
func fill(h *Hooks) {
	h.Hooks = h.Hooks.WithDefaults()
	if h.OpenTeacher == nil {
		h.OpenTeacher = LoadTeacher
	}
}

// lossHook returns the trainer's TrainLoss: each batch's loss, with the cached teacher logits
// of the batch's examples (looked up by dataset index).
func lossHook(cfg Config, ts *transferSet, logits []float32) func([]int, []float32) (nn.Loss, error) {
	byIndex := make([]float32, ts.n+len(ts.extra))
	for i := range byIndex {
		byIndex[i] = float32(math.NaN())
	}
	for k, i := range ts.index {
		byIndex[i] = logits[k]
	}
	return func(batch []int, labels []float32) (nn.Loss, error) {
		t := make([]float32, len(batch))
		for j, i := range batch {
			if i < 0 || i >= len(byIndex) || byIndex[i] != byIndex[i] {
				return nil, fmt.Errorf("distill: example %d of the batch (dataset index %d) is not in the transfer set", j, i)
			}
			t[j] = byIndex[i]
		}
		if cfg.Loss == LossMSE {
			return &MSE{Teacher: t, Labels: labels, Alpha: cfg.Alpha}, nil
		}
		return &KD{Teacher: t, Labels: labels, T: cfg.Temperature, Alpha: cfg.Alpha}, nil
	}
}

// trainBaseline trains (or resumes, or reads back) the student alone in dir.
func trainBaseline(ctx context.Context, cfg Config, dir string, hooks train.Hooks) (train.FinalRecord, error) {
	fr, done, err := finalRecord(dir)
	if err != nil {
		return fr, fmt.Errorf("distill: baseline: %w", err)
	}
	if done {
		fmt.Fprintf(hooks.Log, "Baseline: %s has finished (test accuracy %.2f%%)\n", dir, 100*fr.TestAcc)
		return fr, nil
	}
	fmt.Fprintf(hooks.Log, "Baseline: the same %s trained alone, in %s\n", cfg.Student.Model, dir)
	res, err := trainStudent(ctx, cfg.Student, dir, hooks, train.Options{})
	if err != nil {
		return fr, err
	}
	return res.Final, nil
}

// trainStudent trains a student in dir: a new run, or the rest of one (after its config.json).
// opts carry the objective, and dir's lock when the caller holds it.
func trainStudent(ctx context.Context, st train.Config, dir string, hooks train.Hooks, opts train.Options) (*train.Result, error) {
	if _, err := os.Stat(filepath.Join(dir, train.ConfigFile)); err == nil {
		return train.ResumeWith(ctx, dir, hooks, opts)
	}
	st.RunDir = dir
	return train.RunWith(ctx, st, hooks, opts)
}

func describeLoss(cfg Config) string {
	if cfg.Loss == LossMSE {
		return fmt.Sprintf("MSE on the logits (Tang et al.), alpha %g", cfg.Alpha)
	}
	return fmt.Sprintf("KD (Hinton et al.), T %g, alpha %g", cfg.Temperature, cfg.Alpha)
}

func teacherAcc(dir string) string {
	fr, ok, err := finalRecord(dir)
	if err != nil || !ok {
		return "unknown"
	}
	return fmt.Sprintf("%.2f%%", 100*fr.TestAcc)
}

// group writes n with thousands separators.
func group(n int) string { return progress.FormatCount(int64(n)) }
