package distill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// TeacherLogits names the teacher's logits of an earlier distillation run (its
	// directory, or its teacher_logits.safetensors) to start from, so that a sweep of students
	// runs the teacher once. They must have been computed from the same teacher, transfer set,
	// augmentation and teacher batch size; others are refused. Empty: compute them. A run that
	// has logits of its own (a resumed one) keeps them.
	TeacherLogits string `json:"teacher_logits,omitempty"`

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
	switch c.Student.Kind {
	case nn.KindCNN, nn.KindLSTM:
	case nn.KindBiGRU:
		return bad("the student must be a word model (cnn or lstm), not %s", c.Student.Kind)
	default:
		return bad("unknown student model %q (want cnn or lstm)", c.Student.Kind)
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
	if err := checkOutputs(teacher, c.Teacher); err != nil {
		return c, teacher, err
	}
	if c.Student.Data == "" {
		t := teacher.Config
		c.Student.Data, c.Student.TextColumn, c.Student.LabelColumn = t.Data, t.TextColumn, t.LabelColumn
	}
	// The student reads its labels as the teacher did: the same target (IMDB's ratings, say)
	// and the same class order when the teacher was given one.
	if c.Student.Target == "" {
		c.Student.Target = teacher.Config.Target
	}
	if len(c.Student.Labels) == 0 {
		c.Student.Labels = teacher.Config.Labels
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
		base, err := finishedRun(c.Baseline, "baseline")
		if err != nil {
			return c, teacher, err
		}
		if !slices.Equal(base.Labels, teacher.Labels) {
			return bad("the baseline run %s has the classes %s, the teacher %s %s: a baseline must classify the teacher's classes, in the same order",
				c.Baseline, quoteList(base.Labels), c.Teacher, quoteList(teacher.Labels))
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

// checkOutputs checks that a run's model has the logits its classes need: one for two
// classes, K for K > 2.
func checkOutputs(info train.RunInfo, dir string) error {
	if len(info.Labels) < 2 {
		return fmt.Errorf("distill: run %s records %d class names (config.json \"labels\": %s), want at least two", dir, len(info.Labels), quoteList(info.Labels))
	}
	want := len(info.Labels)
	if want == 2 {
		want = 1
	}
	if info.Model.Outputs != want {
		return fmt.Errorf("distill: run %s has %d classes %s but its model %d outputs (want %d)", dir, len(info.Labels), quoteList(info.Labels), info.Model.Outputs, want)
	}
	return nil
}

// sameClasses checks that the student's data (source) has the teacher's classes in the teacher's
// order: the student learns the teacher's logits class by class.
func sameClasses(teacher, student []string, teacherDir, source string) error {
	if slices.Equal(teacher, student) {
		return nil
	}
	return fmt.Errorf("distill: the student's data %s has the classes %s, the teacher %s was trained on %s: the student learns the teacher's outputs class by class, so its data must have the same classes in the same order",
		source, quoteList(student), teacherDir, quoteList(teacher))
}

// quoteList writes names as ["a", "b", "c"].
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "[" + strings.Join(q, ", ") + "]"
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
	return RunWith(ctx, cfg, hooks, Options{})
}

// Options are what RunWith and ResumeWith take beyond the hooks.
type Options struct {
	// Comm, when set, connects the ranks of a data-parallel distillation (see train.Comm).
	// Every rank reads the teacher's configuration and the data, and builds the transfer set;
	// rank 0 computes the teacher's logits (or reads its cache) and gives them to the others;
	// the student and the baseline train data-parallel; rank 0 alone writes the run directory
	// and the report. nil is one rank.
	Comm train.Comm
	// ThroughputReviews, when positive, replaces a resumed run's own number of test reviews for
	// the report's throughput measure (Resume only; it changes nothing else): the report of a
	// finished run measured again, for instance on a quiet machine, or after a sweep run
	// without the measure.
	ThroughputReviews int
	// Threads, when positive, replaces a resumed run's worker threads (Resume only): the
	// student's training, when it has not finished, and the report's measures.
	Threads int
}

// comm is the options' Comm, or the one-rank Comm.
func (o Options) comm() train.Comm {
	if o.Comm == nil {
		return train.SingleComm{}
	}
	return o.Comm
}

// RunWith is Run with options.
func RunWith(ctx context.Context, cfg Config, hooks Hooks, opts Options) (*Result, error) {
	comm := opts.comm()
	cfg, teacher, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	if err := checkTeacherEncoder(ctx, cfg.Teacher, teacher); err != nil {
		return nil, err
	}
	if cfg.TeacherLogits != "" { // a file that cannot be read is refused before any work
		if _, _, err := openStartingLogits(cfg.TeacherLogits); err != nil {
			return nil, err
		}
	}
	if cfg.RunDir == "" {
		return nil, fmt.Errorf("distill: no run directory given")
	}
	if cfg.RunDir, err = filepath.Abs(cfg.RunDir); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if comm.Size() > 1 {
		if err := train.CheckRanksAgree(comm, sharedSettings(cfg)); err != nil {
			return nil, err
		}
	}
	// The student's run directory, locked for the whole distillation (train.Run then uses the
	// lock rather than taking its own).
	var lock *train.RunLock
	if comm.Rank() == 0 {
		if lock, err = train.CreateRun(cfg.RunDir); err != nil {
			return nil, fmt.Errorf("distill: %w", err)
		}
		defer lock.Unlock()
		if err := writeSettings(cfg); err != nil {
			return nil, err
		}
	}
	return run(ctx, cfg, teacher, hooks, lock, comm)
}

// Resume continues the distillation in dir where it stopped: the teacher's logits from the
// cache (or the rest of them), the student's training after its last checkpoint, then the
// baseline and the report.
func Resume(ctx context.Context, dir string, hooks Hooks) (*Result, error) {
	return ResumeWith(ctx, dir, hooks, Options{})
}

// ResumeWith is Resume with options. On a data-parallel run rank 0 reads the settings from
// dir and gives them to the other ranks, which do not read dir.
func ResumeWith(ctx context.Context, dir string, hooks Hooks, opts Options) (*Result, error) {
	comm := opts.comm()
	p := filepath.Join(dir, SettingsFile)
	var s settings
	var readErr error
	if comm.Rank() == 0 {
		readErr = readSettings(p, &s)
	}
	if comm.Size() > 1 { // rank 0's settings, or why it has none
		msg := []byte("error: ")
		if comm.Rank() == 0 {
			if readErr != nil {
				msg = append(msg, readErr.Error()...)
			} else if msg, readErr = json.Marshal(s.Config); readErr != nil {
				return nil, fmt.Errorf("distill: %w", readErr)
			}
		}
		msg, err := train.BroadcastBytes(comm, msg, 0)
		if err != nil {
			return nil, fmt.Errorf("distill: waiting for rank 0's settings: %w", err)
		}
		if readErr != nil {
			return nil, &train.JobError{Err: readErr}
		}
		if rest, failed := strings.CutPrefix(string(msg), "error: "); failed {
			return nil, &train.JobError{Err: fmt.Errorf("distill: rank 0 could not resume the run: %s", rest)}
		}
		if err := json.Unmarshal(msg, &s.Config); err != nil {
			return nil, fmt.Errorf("distill: rank 0's settings: %w", err)
		}
	} else if readErr != nil {
		return nil, readErr
	}
	cfg := s.Config
	var err error
	if cfg.RunDir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	cfg, teacher, err := cfg.resolved()
	if err != nil {
		return nil, fmt.Errorf("%w (settings of %s)", err, p)
	}
	if opts.ThroughputReviews > 0 {
		cfg.ThroughputReviews = opts.ThroughputReviews
	}
	if opts.Threads > 0 {
		cfg.Student.Threads = opts.Threads
	}
	if err := checkTeacherEncoder(ctx, cfg.Teacher, teacher); err != nil {
		return nil, err
	}
	var lock *train.RunLock
	if comm.Rank() == 0 {
		if lock, err = train.LockRun(cfg.RunDir); err != nil {
			return nil, fmt.Errorf("distill: %w", err)
		}
		defer lock.Unlock()
	}
	return run(ctx, cfg, teacher, hooks, lock, comm)
}

// readSettings reads a run's distill.json at p into s.
func readSettings(p string, s *settings) error {
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("distill: %s is not a distillation run (no %s)", filepath.Dir(p), SettingsFile)
		}
		return fmt.Errorf("distill: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return fmt.Errorf("distill: %s: %w", p, err)
	}
	return nil
}

// sharedSettings are the settings that every rank of a data-parallel distillation must share:
// the student's (train.SharedSettings), and the distillation's own but for the paths on a
// rank's machine (the teacher's, the unlabelled reviews', the baseline's), whose contents are
// checked otherwise (the teacher's logits are rank 0's; the transfer set is in the student's
// data checksum).
func sharedSettings(cfg Config) map[string]string {
	settings := map[string]string{}
	for name, v := range train.SharedSettings(cfg.Student) {
		settings["student "+name] = v
	}
	b, err := json.Marshal(cfg)
	var fields map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &fields)
	}
	if err != nil {
		settings["settings"] = err.Error()
		return settings
	}
	for name, v := range fields {
		switch name {
		case "student", "teacher", "unsup", "baseline":
		default:
			settings[name] = string(v)
		}
	}
	return settings
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
// lock is the student's run directory's lock, held by the caller (rank 0).
func run(ctx context.Context, cfg Config, teacher train.RunInfo, hooks Hooks, lock *train.RunLock, comm train.Comm) (*Result, error) {
	fill(&hooks)
	if comm.Rank() != 0 { // rank 0 reports
		hooks.Log, hooks.Progress, hooks.ProgressMode = io.Discard, io.Discard, progress.Quiet
	}
	dir := cfg.RunDir
	res := &Result{RunDir: dir}
	log := hooks.Log
	fmt.Fprintf(log, "Teacher: %s (%s, test accuracy %s)\n", cfg.Teacher, describeModel(teacher.Model), teacherAcc(cfg.Teacher))

	// The transfer set and the teacher's logits over it.
	ts, err := buildTransfer(ctx, cfg, hooks.Hooks)
	if err != nil {
		return nil, err
	}
	if err := sameClasses(teacher.Labels, ts.corpus.Classes, cfg.Teacher, ts.corpus.Source); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "Transfer set: %s train + %s unlabelled + %s augmented = %s reviews\n",
		group(ts.train), group(ts.unsup), group(ts.augmented), group(len(ts.texts)))
	lo := train.LoadOptions{Threads: cfg.Student.Threads, BLAS: cfg.Student.BLAS}
	openTeacher := func() (Teacher, error) { return hooks.OpenTeacher(cfg.Teacher, lo) }
	K := teacher.Model.Outputs
	var logits []float32
	if comm.Rank() == 0 { // the logits cache is in the run directory
		logits, err = teacherLogits(ctx, dir, cfg, ts, K, openTeacher, hooks.Hooks)
	}
	if comm.Size() > 1 {
		logits, err = shareLogits(comm, logits, err, len(ts.index)*K) // K logits per example
	}
	if err != nil {
		return nil, err
	}

	// The student.
	// A run log that cannot be read (cut short by a kill) is no finished run: the resume
	// rewrites it from the checkpoint.
	var (
		final train.FinalRecord
		done  bool
	)
	if comm.Rank() == 0 {
		final, done, _ = finalRecord(dir)
	}
	if done, err = rank0Says(comm, done); err != nil {
		return nil, err
	}
	if done {
		fmt.Fprintf(log, "Student: %s has finished (test accuracy %.2f%%)\n", dir, 100*final.TestAcc)
	} else {
		obj := train.Objective{Kind: Kind, ExtraTrain: ts.extra, TrainLoss: lossHook(cfg, ts, K, logits)}
		fmt.Fprintf(log, "Student: %s, %s\n", cfg.Student.Kind, describeLoss(cfg))
		if res.Train, err = trainStudent(ctx, cfg.Student, dir, hooks.Hooks, train.Options{Objective: obj, Lock: lock, Comm: comm}); err != nil {
			return nil, err
		}
		res.Student = res.Train.Final
	}
	if done {
		res.Student = final
	}

	// The baseline, then the report (rank 0).
	baseline := cfg.Baseline
	if cfg.TrainBaseline {
		baseline = filepath.Join(dir, BaselineDir)
		fr, err := trainBaseline(ctx, cfg, baseline, hooks.Hooks, comm)
		if err != nil {
			return nil, err
		}
		res.Baseline = &fr
	}
	if comm.Rank() != 0 {
		return res, nil
	}
	if baseline != "" && !cfg.TrainBaseline {
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
// of the batch's examples (looked up by dataset index; K per example, one for a binary teacher).
func lossHook(cfg Config, ts *transferSet, K int, logits []float32) func([]int, []float32) (nn.Loss, error) {
	byIndex := make([]float32, (ts.n+len(ts.extra))*K)
	for i := range byIndex {
		byIndex[i] = float32(math.NaN())
	}
	for k, i := range ts.index {
		copy(byIndex[i*K:(i+1)*K], logits[k*K:(k+1)*K])
	}
	return func(batch []int, labels []float32) (nn.Loss, error) {
		t := make([]float32, len(batch)*K)
		for j, i := range batch {
			if i < 0 || i*K >= len(byIndex) || byIndex[i*K] != byIndex[i*K] {
				return nil, fmt.Errorf("distill: example %d of the batch (dataset index %d) is not in the transfer set", j, i)
			}
			copy(t[j*K:(j+1)*K], byIndex[i*K:(i+1)*K])
		}
		if cfg.Loss == LossMSE {
			return &MSE{Teacher: t, Labels: labels, Alpha: cfg.Alpha}, nil
		}
		return &KD{Teacher: t, Labels: labels, T: cfg.Temperature, Alpha: cfg.Alpha}, nil
	}
}

// trainBaseline trains (or resumes, or reads back) the student alone in dir (data-parallel
// over comm).
func trainBaseline(ctx context.Context, cfg Config, dir string, hooks train.Hooks, comm train.Comm) (train.FinalRecord, error) {
	var (
		fr   train.FinalRecord
		done bool
		err  error
	)
	if comm.Rank() == 0 {
		if fr, done, err = finalRecord(dir); err != nil {
			err = fmt.Errorf("distill: baseline: %w", err)
		}
	}
	if done, err = rank0Decides(comm, done, err); err != nil {
		return fr, err
	}
	if done {
		fmt.Fprintf(hooks.Log, "Baseline: %s has finished (test accuracy %.2f%%)\n", dir, 100*fr.TestAcc)
		return fr, nil
	}
	fmt.Fprintf(hooks.Log, "Baseline: the same %s trained alone, in %s\n", cfg.Student.Kind, dir)
	res, err := trainStudent(ctx, cfg.Student, dir, hooks, train.Options{Comm: comm})
	if err != nil {
		return fr, err
	}
	return res.Final, nil
}

// trainStudent trains a student in dir: a new run, or the rest of one (after its config.json;
// rank 0 looks). opts carry the objective, the ranks, and dir's lock when the caller holds it.
func trainStudent(ctx context.Context, st train.Config, dir string, hooks train.Hooks, opts train.Options) (*train.Result, error) {
	resume := false
	if opts.Comm == nil || opts.Comm.Rank() == 0 {
		_, err := os.Stat(filepath.Join(dir, train.ConfigFile))
		resume = err == nil
	}
	if opts.Comm != nil {
		var err error
		if resume, err = rank0Says(opts.Comm, resume); err != nil {
			return nil, err
		}
	}
	if resume {
		return train.ResumeWith(ctx, dir, hooks, opts)
	}
	st.RunDir = dir
	return train.RunWith(ctx, st, hooks, opts)
}

// rank0Says gives every rank rank 0's answer (the others' is not read).
func rank0Says(comm train.Comm, yes bool) (bool, error) {
	return rank0Decides(comm, yes, nil)
}

// rank0Decides gives every rank rank 0's answer, or its error (err, on rank 0), which every
// rank then returns (a train.JobError).
func rank0Decides(comm train.Comm, yes bool, err error) (bool, error) {
	if comm.Size() == 1 {
		return yes, err
	}
	msg := []byte("no")
	switch {
	case err != nil:
		msg = []byte("error: " + err.Error())
	case yes:
		msg = []byte("yes")
	}
	msg, berr := train.BroadcastBytes(comm, msg, 0)
	if berr != nil {
		return false, fmt.Errorf("distill: waiting for rank 0: %w", berr)
	}
	if rest, failed := strings.CutPrefix(string(msg), "error: "); failed {
		if err == nil {
			err = fmt.Errorf("distill: rank 0: %s", rest)
		}
		return false, &train.JobError{Err: err}
	}
	return string(msg) == "yes", nil
}

// shareLogits gives every rank rank 0's teacher logits (err is rank 0's error in computing
// them: every rank then stops, with ErrInterrupted when rank 0 was interrupted). n is the number
// of logits of this rank's transfer set (K per example), which must be rank 0's.
func shareLogits(comm train.Comm, logits []float32, err error, n int) ([]float32, error) {
	const ok, interrupted, failed = 0, 1, 2
	head := []float32{float32(n), ok}
	switch {
	case errors.Is(err, train.ErrInterrupted):
		head[1] = interrupted
	case err != nil:
		head[1] = failed
	}
	if berr := comm.Broadcast(head, 0); berr != nil {
		return nil, fmt.Errorf("distill: waiting for the teacher's logits: %w", berr)
	}
	if comm.Rank() == 0 && err != nil {
		if head[1] == failed {
			err = &train.JobError{Err: err}
		}
		return nil, err
	}
	switch head[1] {
	case interrupted:
		return nil, fmt.Errorf("%w while rank 0 computed the teacher's logits", train.ErrInterrupted)
	case failed:
		return nil, &train.JobError{Err: errors.New("distill: rank 0 could not compute the teacher's logits")}
	}
	// Every rank's transfer set must be rank 0's size, else the broadcast would not match.
	differs := []float32{0}
	if int(head[0]) != n {
		differs[0] = 1
	}
	if err := comm.AllreduceSum(differs); err != nil {
		return nil, fmt.Errorf("distill: comparing the transfer sets: %w", err)
	}
	if differs[0] > 0 {
		return nil, &train.JobError{Err: fmt.Errorf("distill: the ranks' transfer sets differ in size (rank 0 has %d teacher logits): every rank needs the same data and unlabelled reviews", int(head[0]))}
	}
	if comm.Rank() != 0 {
		logits = make([]float32, n)
	}
	if err := comm.Broadcast(logits, 0); err != nil {
		return nil, fmt.Errorf("distill: sharing the teacher's logits: %w", err)
	}
	return logits, nil
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
