package distill

// The report a distillation ends with: teacher, distilled student and the student trained
// alone, side by side.

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// Row is one model of the report.
type Row struct {
	// Role is "teacher", "distilled student" or "student alone".
	Role string `json:"role"`
	// Run is the run directory; Model describes the model ("cnn (emb 100, 3x100 filters)").
	Run   string `json:"run"`
	Model string `json:"model"`
	// TestAcc is the accuracy on the student's test split.
	TestAcc float64 `json:"test_acc"`
	// Params counts the trainable parameters; CheckpointBytes is the size of the best
	// checkpoint's weights file. A bigru's include its frozen encoder's parameters and weights
	// file, since every review runs through the encoder.
	Params          int   `json:"params"`
	CheckpointBytes int64 `json:"checkpoint_bytes"`
	// ReviewsPerSec is the inference throughput (Predictor.Logits, batches of 64); 0 when
	// not measured (Note says why).
	ReviewsPerSec float64 `json:"reviews_per_sec"`
	Note          string  `json:"note,omitempty"`
}

// Report compares the teacher, the distilled student and (with a baseline) the student alone.
type Report struct {
	Rows []Row `json:"rows"`
	// GapClosed is (distilled - alone) / (teacher - alone) in test accuracy: the share of the
	// teacher-student gap that distillation closed. NaN without a baseline, or when the
	// teacher is not better than the student alone.
	GapClosed float64 `json:"gap_closed"`
	// Settings describes the distillation (loss, temperature, transfer set).
	Settings string `json:"settings"`
	// TestReviews is the size of the test split; ThroughputReviews how many of its reviews the
	// throughput measure classified, with Threads worker threads, on Machine.
	TestReviews       int    `json:"test_reviews"`
	ThroughputReviews int    `json:"throughput_reviews"`
	Threads           int    `json:"threads"`
	Machine           string `json:"machine"`
}

// The roles of the report's rows.
const (
	RoleTeacher   = "teacher"
	RoleDistilled = "distilled student"
	RoleAlone     = "student alone"
)

// throughputBatch is the batch size of the throughput measure.
const throughputBatch = 64

// makeReport measures the three models on the student's test split.
func makeReport(ctx context.Context, cfg Config, ts *transferSet, baseline string, log io.Writer) (Report, error) {
	threads := cfg.Student.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	rep := Report{GapClosed: math.NaN(), TestReviews: len(ts.corpus.Test), Threads: threads,
		Settings: fmt.Sprintf("%s; transfer set %s train + %s unlabelled + %s augmented reviews",
			describeLoss(cfg), group(ts.train), group(ts.unsup), group(ts.augmented)),
		Machine: machine()}
	// The fixed set of the throughput measure: test reviews spread evenly over the split.
	k := min(cfg.ThroughputReviews, len(ts.corpus.Test))
	rep.ThroughputReviews = k
	texts := make([]string, k)
	for j := range texts {
		texts[j] = ts.corpus.Examples[ts.corpus.Test[j*len(ts.corpus.Test)/k]].Text
	}
	runs := []struct{ role, dir string }{{RoleTeacher, cfg.Teacher}, {RoleDistilled, cfg.RunDir}}
	if baseline != "" {
		runs = append(runs, struct{ role, dir string }{RoleAlone, baseline})
	}
	for _, r := range runs {
		if ctx.Err() != nil {
			return rep, fmt.Errorf("%w while measuring the models for the report; resume with --resume %s", train.ErrInterrupted, cfg.RunDir)
		}
		row, err := measureRun(ctx, r.role, r.dir, cfg, ts, texts, log)
		if err != nil {
			return rep, err
		}
		rep.Rows = append(rep.Rows, row)
	}
	if len(rep.Rows) == 3 {
		t, d, a := rep.Rows[0].TestAcc, rep.Rows[1].TestAcc, rep.Rows[2].TestAcc
		if t > a {
			rep.GapClosed = (d - a) / (t - a)
		}
	}
	return rep, nil
}

// measureRun fills one row: test accuracy (the run's own test result when it was tested on
// the same split, else measured here), size and throughput.
func measureRun(ctx context.Context, role, dir string, cfg Config, ts *transferSet, texts []string, log io.Writer) (Row, error) {
	row := Row{Role: role, Run: dir}
	info, err := train.ReadRunInfo(dir)
	if err != nil {
		return row, fmt.Errorf("distill: report: %w", err)
	}
	row.Model, row.Params = describeModel(info.Model), info.Params
	if role == RoleAlone {
		student, err := train.ReadRunInfo(cfg.RunDir)
		if err != nil {
			return row, fmt.Errorf("distill: report: %w", err)
		}
		if diff := settingsDiff(student, info); diff != "" {
			row.Note = "trained with other settings than the distilled student: " + diff
		}
	}
	if st, err := os.Stat(filepath.Join(dir, train.BestDir, train.WeightsFile)); err == nil {
		row.CheckpointBytes = st.Size()
	}
	fr, ok, err := finalRecord(dir)
	if err != nil {
		return row, fmt.Errorf("distill: report: %w", err)
	}
	sameSplit := ok && sameTestSplit(info.Config, cfg.Student)
	if sameSplit {
		row.TestAcc = fr.TestAcc
	}
	p, err := train.Load(dir, train.LoadOptions{Threads: cfg.Student.Threads, BLAS: cfg.Student.BLAS})
	if err != nil {
		if !sameSplit {
			return row, fmt.Errorf("distill: report: %s was not tested on the student's test split, and cannot be loaded to test it: %w", dir, err)
		}
		row.Note = joinNotes(row.Note, "throughput not measured: "+err.Error())
		return row, nil
	}
	if enc := p.Encoder(); enc != nil { // it runs for every review: part of the model served
		row.Params += enc.Params()
		st, err := os.Stat(enc.WeightsFile)
		if err != nil {
			return row, fmt.Errorf("distill: report: the encoder of %s: %w", dir, err)
		}
		row.CheckpointBytes += st.Size()
		row.Note = joinNotes(row.Note, fmt.Sprintf("parameters and checkpoint include the frozen encoder %s (%s parameters, %s)",
			info.Config.Encoder, group(enc.Params()), progress.FormatBytes(st.Size())))
	}
	if !sameSplit {
		fmt.Fprintf(log, "Report: testing the %s (%s) on the student's test split\n", role, dir)
		if row.TestAcc, err = accuracy(ctx, p, ts.corpus); err != nil {
			return row, fmt.Errorf("distill: report: testing %s: %w", dir, err)
		}
		row.Note = joinNotes(row.Note, "tested here on the student's test split")
	}
	if len(texts) > 0 {
		fmt.Fprintf(log, "Report: throughput of the %s over %d test reviews\n", role, len(texts))
		if row.ReviewsPerSec, err = throughput(p, texts); err != nil {
			return row, fmt.Errorf("distill: report: %s: %w", dir, err)
		}
	}
	return row, nil
}

// settingsDiff says how a baseline run's model and training settings differ from the
// distilled student's ("" when they do not).
func settingsDiff(student, alone train.RunInfo) string {
	var diffs []string
	add := func(name string, s, a any) {
		if fmt.Sprint(s) != fmt.Sprint(a) {
			diffs = append(diffs, fmt.Sprintf("%s %v (student %v)", name, a, s))
		}
	}
	sm, am := student.Model, alone.Model
	add("model", describeModel(sm), describeModel(am))
	add("vocabulary", sm.VocabSize, am.VocabSize)
	add("dropout", sm.Dropout, am.Dropout)
	sc, ac := student.Config, alone.Config
	add("epochs", sc.Epochs, ac.Epochs)
	add("batch size", sc.BatchSize, ac.BatchSize)
	add("learning rate", sc.LR, ac.LR)
	add("seed", sc.Seed, ac.Seed)
	add("data", sc.Data, ac.Data)
	add("limit", sc.Limit, ac.Limit)
	add("max length", sc.MaxTokens(), ac.MaxTokens())
	add("patience", sc.Patience, ac.Patience)
	add("clip norm", sc.ClipNorm, ac.ClipNorm)
	return strings.Join(diffs, ", ")
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// sameTestSplit reports whether two runs' configurations give the same test split.
func sameTestSplit(a, b train.Config) bool {
	return a.Data == b.Data && a.Limit == b.Limit && a.Seed == b.Seed && a.TextColumn == b.TextColumn && a.LabelColumn == b.LabelColumn
}

// accuracy classifies the corpus's test split with p (a *train.Predictor): a text's class is
// its largest logit's (a binary model's: logit > 0).
func accuracy(ctx context.Context, p Teacher, c *data.Corpus) (float64, error) {
	order := computeOrder(texts(c, c.Test))
	correct := 0
	for s := 0; s < len(order); s += throughputBatch {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		chunk := order[s:min(s+throughputBatch, len(order))]
		batch := make([]string, len(chunk))
		for j, k := range chunk {
			batch[j] = c.Examples[c.Test[k]].Text
		}
		logits, err := p.Logits(batch)
		if err != nil {
			return 0, err
		}
		K := len(logits) / max(len(batch), 1) // one logit per text for binary, K for K classes
		for j, k := range chunk {
			if nn.Predicted(logits[j*K:(j+1)*K]) == c.Examples[c.Test[k]].Label {
				correct++
			}
		}
	}
	return float64(correct) / float64(max(len(order), 1)), nil
}

func texts(c *data.Corpus, idx []int) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = c.Examples[i].Text
	}
	return out
}

// throughput classifies texts (their logits: Predictor.Logits) in batches of 64 (after one
// batch to warm up) and returns the reviews per second.
func throughput(p *train.Predictor, texts []string) (float64, error) {
	if _, err := p.Logits(texts[:min(throughputBatch, len(texts))]); err != nil {
		return 0, err
	}
	t0 := time.Now()
	for s := 0; s < len(texts); s += throughputBatch {
		if _, err := p.Logits(texts[s:min(s+throughputBatch, len(texts))]); err != nil {
			return 0, err
		}
	}
	return float64(len(texts)) / time.Since(t0).Seconds(), nil
}

// describeModel names a model and its size.
func describeModel(m nn.Config) string {
	switch m.Kind {
	case nn.KindCNN:
		return fmt.Sprintf("cnn (emb %d, %dx%d filters)", m.EmbedDim, len(m.Widths), m.Filters)
	case nn.KindLSTM:
		return fmt.Sprintf("lstm (emb %d, %dx%d%s)", m.EmbedDim, m.Layers, m.Hidden, biLabel(m.Bidirectional))
	case nn.KindBiGRU:
		return fmt.Sprintf("bigru (in %d, %dx%d%s)", m.InputDim, m.Layers, m.Hidden, biLabel(m.Bidirectional))
	}
	return m.Kind
}

func biLabel(bi bool) string {
	if bi {
		return " bi"
	}
	return ""
}

// machine describes this computer for the report.
func machine() string {
	host, _ := os.Hostname()
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					cpu = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	s := fmt.Sprintf("%s, %d cores", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	if cpu != "" {
		s = cpu + ", " + s
	}
	if host != "" {
		s = host + ": " + s
	}
	return s
}

// cells returns the table's header and rows as strings.
func (r Report) cells() [][]string {
	out := [][]string{{"", "model", "test acc", "params", "checkpoint", "reviews/s", "run"}}
	for _, row := range r.Rows {
		rate := "n/a"
		if row.ReviewsPerSec > 0 {
			rate = fmt.Sprintf("%.0f", row.ReviewsPerSec)
		}
		out = append(out, []string{row.Role, row.Model, fmt.Sprintf("%.2f%%", 100*row.TestAcc), group(row.Params),
			fmt.Sprintf("%.1f MiB", float64(row.CheckpointBytes)/(1<<20)), rate, row.Run})
	}
	return out
}

// gapLine says how much of the gap distillation closed.
func (r Report) gapLine() string {
	if len(r.Rows) < 3 {
		return "No baseline (the student trained alone): give one, or ask for one to be trained, to see the gap closed."
	}
	t, d, a := 100*r.Rows[0].TestAcc, 100*r.Rows[1].TestAcc, 100*r.Rows[2].TestAcc
	if math.IsNaN(r.GapClosed) {
		return fmt.Sprintf("The teacher (%.2f%%) is not better than the student alone (%.2f%%): no gap to close; distilled - alone = %+.2f points.", t, a, d-a)
	}
	return fmt.Sprintf("Distillation closed %.1f%% of the teacher-student gap: (distilled - alone) / (teacher - alone) = (%.2f - %.2f) / (%.2f - %.2f); distilled - alone = %+.2f points.",
		100*r.GapClosed, d, a, t, a, d-a)
}

func (r Report) conditions() string {
	if r.ThroughputReviews == 0 {
		return fmt.Sprintf("Test accuracy on the %s test reviews. Throughput not measured.", group(r.TestReviews))
	}
	return fmt.Sprintf("Test accuracy on the %s test reviews. Throughput: Predictor.Logits in batches of %d over %s test reviews, %d threads, on %s (one measurement; a busy machine gives noisy numbers).",
		group(r.TestReviews), throughputBatch, group(r.ThroughputReviews), r.Threads, r.Machine)
}

// Text formats the report as an aligned plain-text table.
func (r Report) Text() string {
	cells := r.cells()
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Distillation: %s\n\n", r.Settings)
	for n, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i >= 2 && i <= 5 { // numbers right-aligned
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteString("\n")
		if n == 0 {
			total := 2 * (len(widths) - 1)
			for _, w := range widths {
				total += w
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	fmt.Fprintf(&b, "\n%s\n%s\n", r.gapLine(), r.conditions())
	for _, row := range r.Rows {
		if row.Note != "" {
			fmt.Fprintf(&b, "Note, %s: %s\n", row.Role, row.Note)
		}
	}
	return b.String()
}

// Markdown formats the report as a Markdown document (distill_report.md).
func (r Report) Markdown() string {
	cells := r.cells()
	var b strings.Builder
	b.WriteString("# Distillation report\n\n")
	fmt.Fprintf(&b, "%s.\n\n", r.Settings)
	for n, row := range cells {
		esc := make([]string, len(row))
		for i, c := range row {
			if i == len(row)-1 && n > 0 {
				c = "`" + c + "`"
			}
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(esc, " | ") + " |\n")
		if n == 0 {
			b.WriteString("|---|---|---:|---:|---:|---:|---|\n")
		}
	}
	fmt.Fprintf(&b, "\n%s\n\n%s\n", r.gapLine(), r.conditions())
	sep := "\n"
	for _, row := range r.Rows {
		if row.Note != "" {
			fmt.Fprintf(&b, "%s- %s: %s\n", sep, row.Role, row.Note)
			sep = ""
		}
	}
	return b.String()
}
