package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/train"
)

// Summary is one run's line of the comparison table. Unknown figures are NaN (floats) or zero
// (counts, sizes) and show as "-".
type Summary struct {
	Name      string
	Dir       string
	Framework string
	Model     string
	Device    string
	Dropout   float64
	// Params is the number of trainable weights (the final record's), or the number of weights
	// in the best checkpoint while the run has no final record.
	Params          int
	CheckpointBytes int64
	// Epochs is the number of epochs in the log; EpochsPlanned what the run was set to do (0
	// when unknown). Finished says the log has its final record.
	Epochs        int
	EpochsPlanned int
	Finished      bool
	// BestEpoch and BestValidAcc are the epoch with the lowest valid loss and its valid
	// accuracy (a fraction); TestAcc is the best checkpoint's test accuracy (NaN until the run
	// is finished).
	BestEpoch    int
	BestValidAcc float64
	TestAcc      float64
	// MeanEpochSeconds is the mean wall time of the logged epochs (training plus validation);
	// TokensPerSecond the mean training throughput.
	MeanEpochSeconds float64
	TokensPerSecond  float64
	// PeakRSSMiB is the largest per-epoch peak RSS (the final record's when no epoch has one);
	// PeakRSSMethod says how it was measured ("vmhwm": per epoch; "ru_maxrss": the whole
	// process, data loading included).
	PeakRSSMiB    float64
	PeakRSSMethod string
	PeakHeapMiB   float64
	// PeakGPUMiB is the largest device memory peak (NaN on the CPU).
	PeakGPUMiB float64
	// TestClasses are the test's figures by class of a run of more than two classes (its final
	// record's test_metrics), nil for other runs; Classes name its classes in id order.
	// TestMacroF1 and TestMAE are its macro-F1 and, for ordinal classes, mean absolute error
	// (NaN when not recorded).
	TestClasses          *train.ClassMetrics
	Classes              []string
	TestMacroF1, TestMAE float64
}

// Summarize condenses a run into its table line.
func Summarize(r *Run) Summary {
	nan := math.NaN()
	s := Summary{
		Name: r.Name, Dir: r.Dir, Framework: r.Framework,
		Model: r.Config.Model.Kind, Device: r.Config.Device, Dropout: nan,
		Params: r.CheckpointParams, CheckpointBytes: r.CheckpointBytes,
		Epochs: len(r.Epochs), EpochsPlanned: r.Config.Epochs,
		BestValidAcc: nan, TestAcc: nan, MeanEpochSeconds: nan, TokensPerSecond: nan,
		PeakRSSMiB: nan, PeakHeapMiB: nan, PeakGPUMiB: nan, TestMacroF1: nan, TestMAE: nan,
	}
	if r.Config.Dropout != nil {
		s.Dropout = *r.Config.Dropout
	}
	bestLoss := math.Inf(1)
	var secs, tps float64
	var nTPS int
	for i, e := range r.Epochs {
		if e.ValidLoss < bestLoss { // NaN losses never win, as in the trainer
			bestLoss, s.BestEpoch, s.BestValidAcc = e.ValidLoss, e.Epoch, e.ValidAcc
		}
		secs += e.Seconds
		if e.TokensPerSecond > 0 {
			tps += e.TokensPerSecond
			nTPS++
		}
		s.PeakRSSMiB = maxKnown(s.PeakRSSMiB, e.PeakRSSMiB)
		if e.PeakRSSMethod != "" {
			s.PeakRSSMethod = e.PeakRSSMethod
		}
		s.PeakHeapMiB = maxKnown(s.PeakHeapMiB, e.PeakHeapMiB)
		s.PeakGPUMiB = maxKnown(s.PeakGPUMiB, e.PeakGPUMiB)
		s.PeakGPUMiB = maxKnown(s.PeakGPUMiB, r.PeakCUDAMiB[i])
	}
	if n := len(r.Epochs); n > 0 {
		s.MeanEpochSeconds = secs / float64(n)
	}
	if nTPS > 0 {
		s.TokensPerSecond = tps / float64(nTPS)
	}
	if f := r.Final; f != nil {
		s.Finished = true
		s.TestAcc = f.TestAcc
		if f.BestEpoch > 0 {
			// The best epoch's own record, where the log has it (torch_ref.py's final record
			// does not say best_valid_acc).
			s.BestEpoch, s.BestValidAcc = f.BestEpoch, nan
			if f.BestValidAcc > 0 {
				s.BestValidAcc = f.BestValidAcc
			}
			for _, e := range r.Epochs {
				if e.Epoch == f.BestEpoch {
					s.BestValidAcc = e.ValidAcc
				}
			}
		}
		if f.Model != "" {
			s.Model = f.Model
		}
		if f.Device != "" {
			s.Device = f.Device
		}
		s.Dropout = f.Dropout
		if f.Params > 0 {
			s.Params = f.Params
		}
		if f.Epochs > 0 {
			s.EpochsPlanned = f.Epochs
		}
		if math.IsNaN(s.PeakRSSMiB) {
			s.PeakRSSMiB = maxKnown(s.PeakRSSMiB, f.PeakRSSMiB)
		}
		s.PeakGPUMiB = maxKnown(s.PeakGPUMiB, f.PeakGPUMiB)
		s.PeakGPUMiB = maxKnown(s.PeakGPUMiB, r.FinalCUDAMiB)
		if m := f.TestMetrics; m != nil && len(m.Confusion) > 0 {
			s.TestClasses, s.TestMacroF1 = m, m.MacroF1
			if m.MAE != nil {
				s.TestMAE = *m.MAE
			}
			s.Classes = classNames(r.Config.Labels, len(m.Confusion))
		}
	}
	if !math.IsNaN(s.PeakRSSMiB) && s.PeakRSSMethod == "" && strings.HasPrefix(s.Framework, "torch") {
		s.PeakRSSMethod = "ru_maxrss" // torch_ref.py's peak_rss_mib
	}
	return s
}

// classNames are a run's class names for k classes: its labels, or "0" to "k-1" when it names
// other than k of them.
func classNames(labels []string, k int) []string {
	if len(labels) == k {
		return labels
	}
	names := make([]string, k)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// maxKnown is the larger of a (NaN: none yet) and v (0: not measured).
func maxKnown(a, v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return a
	}
	if math.IsNaN(a) || v > a {
		return v
	}
	return a
}

// Table is the comparison of several runs, one Summary per run, in the order given.
type Table struct {
	Rows []Summary
}

// Compare summarizes the runs into a table.
func Compare(runs []*Run) Table {
	t := Table{Rows: make([]Summary, len(runs))}
	for i, r := range runs {
		t.Rows[i] = Summarize(r)
	}
	return t
}

// Format is an output format of the table.
type Format string

// The table's formats.
const (
	FormatText     Format = "text"
	FormatMarkdown Format = "markdown"
	FormatCSV      Format = "csv"
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatText, FormatMarkdown, FormatCSV:
		return f, nil
	case "md":
		return FormatMarkdown, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, markdown or csv)", s)
}

// Write writes the table in the format.
func (t Table) Write(w io.Writer, f Format) error {
	switch f {
	case FormatText:
		return t.WriteText(w)
	case FormatMarkdown:
		return t.WriteMarkdown(w)
	case FormatCSV:
		return t.WriteCSV(w)
	}
	return fmt.Errorf("unknown format %q (want text, markdown or csv)", f)
}

// column is one column of the text and Markdown tables.
type column struct {
	head  string
	right bool // numbers are right-aligned
	cell  func(s Summary) string
}

// wholeProcess marks a peak RSS that covers the whole process, not the epochs alone.
const wholeProcess = "*"

var columns = []column{
	{"run", false, func(s Summary) string { return s.Name }},
	{"framework", false, func(s Summary) string { return orDash(s.Framework) }},
	{"model", false, func(s Summary) string { return orDash(s.Model) }},
	{"device", false, func(s Summary) string { return orDash(s.Device) }},
	{"dropout", true, func(s Summary) string { return num(s.Dropout, -1) }},
	{"params", true, func(s Summary) string { return count(int64(s.Params)) }},
	{"checkpoint", true, func(s Summary) string {
		if s.CheckpointBytes <= 0 {
			return "-"
		}
		return num(float64(s.CheckpointBytes)/(1<<20), 1) + " MiB"
	}},
	{"epochs", true, func(s Summary) string {
		if s.EpochsPlanned > 0 && (!s.Finished || s.Epochs != s.EpochsPlanned) {
			return fmt.Sprintf("%d/%d", s.Epochs, s.EpochsPlanned)
		}
		return strconv.Itoa(s.Epochs)
	}},
	{"best valid acc", true, func(s Summary) string { return pct(s.BestValidAcc) }},
	{"test acc", true, func(s Summary) string { return pct(s.TestAcc) }},
	{"s/epoch", true, func(s Summary) string { return num(s.MeanEpochSeconds, 1) }},
	{"tokens/s", true, func(s Summary) string {
		if math.IsNaN(s.TokensPerSecond) {
			return "-"
		}
		return count(int64(math.Round(s.TokensPerSecond)))
	}},
	{"peak RSS MiB", true, func(s Summary) string {
		if math.IsNaN(s.PeakRSSMiB) {
			return "-"
		}
		c := count(int64(math.Round(s.PeakRSSMiB)))
		if s.PeakRSSMethod == "ru_maxrss" {
			c += wholeProcess
		}
		return c
	}},
	{"peak GPU MiB", true, func(s Summary) string {
		if math.IsNaN(s.PeakGPUMiB) {
			return "-"
		}
		return count(int64(math.Round(s.PeakGPUMiB)))
	}},
}

// The columns of runs of more than two classes, which a table has when one of its runs
// recorded the figure (a table of binary runs has none of them).
var (
	macroF1Column = column{"test macro-F1", true, func(s Summary) string { return num(s.TestMacroF1, 3) }}
	maeColumn     = column{"test MAE", true, func(s Summary) string { return num(s.TestMAE, 3) }}
)

// columns is the table's columns: every run's, then macro-F1 and MAE when a run has them.
func (t Table) columns() []column {
	cols := columns
	if t.any(func(s Summary) bool { return !math.IsNaN(s.TestMacroF1) }) {
		cols = append(slices.Clip(cols), macroF1Column)
	}
	if t.any(func(s Summary) bool { return !math.IsNaN(s.TestMAE) }) {
		cols = append(slices.Clip(cols), maeColumn)
	}
	return cols
}

// any reports whether a row satisfies f.
func (t Table) any(f func(Summary) bool) bool { return slices.ContainsFunc(t.Rows, f) }

// cells renders the table for text and Markdown.
func (t Table) cells() (cols []column, head []string, rows [][]string) {
	cols = t.columns()
	for _, c := range cols {
		head = append(head, c.head)
	}
	for _, s := range t.Rows {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.cell(s)
		}
		rows = append(rows, row)
	}
	return cols, head, rows
}

// notes are the table's footnotes.
func (t Table) notes() []string {
	var notes []string
	for _, s := range t.Rows {
		if s.PeakRSSMethod == "ru_maxrss" && !math.IsNaN(s.PeakRSSMiB) {
			notes = append(notes, wholeProcess+" whole-process peak RSS (getrusage ru_maxrss: data loading and earlier epochs included), not per epoch")
			break
		}
	}
	for _, s := range t.Rows {
		if !s.Finished {
			notes = append(notes, "- test acc: the run has no final record yet (unfinished or stopped)")
			break
		}
	}
	return notes
}

// WriteText writes the table with aligned columns for a terminal, its notes, and the test's
// figures by class of each run of more than two classes.
func (t Table) WriteText(w io.Writer) error {
	cols, head, rows := t.cells()
	var b strings.Builder
	writeAligned(&b, cols, head, rows)
	for _, n := range t.notes() {
		b.WriteString(n + "\n")
	}
	for _, s := range t.Rows {
		if s.TestClasses != nil {
			b.WriteString("\n" + classTitle(s, "") + "\n")
			writeAligned(&b, classColumns, classHead, classRows(s))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAligned writes a table with aligned columns: the head, a rule, the rows.
func writeAligned(b *strings.Builder, cols []column, head []string, rows [][]string) {
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			switch {
			case cols[i].right:
				b.WriteString(pad + c)
			case i == len(cells)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
		}
		b.WriteString("\n")
	}
	line(head)
	rule := make([]string, len(head))
	for i := range rule {
		rule[i] = strings.Repeat("-", width[i])
	}
	line(rule)
	for _, r := range rows {
		line(r)
	}
}

// WriteMarkdown writes the table as a GitHub Markdown table, its notes, and the test's figures
// by class of each run of more than two classes.
func (t Table) WriteMarkdown(w io.Writer) error {
	cols, head, rows := t.cells()
	var b strings.Builder
	writeMarkdownTable(&b, cols, head, rows)
	if notes := t.notes(); len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString(strings.Replace(n, wholeProcess, `\*`, 1) + "\n\n")
		}
	}
	for _, s := range t.Rows {
		if s.TestClasses != nil {
			b.WriteString("\n" + classTitle(s, "**") + "\n\n")
			writeMarkdownTable(&b, classColumns, classHead, classRows(s))
		}
	}
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

// writeMarkdownTable writes a GitHub Markdown table.
func writeMarkdownTable(b *strings.Builder, cols []column, head []string, rows [][]string) {
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	row(head)
	b.WriteString("|")
	for _, c := range cols {
		if c.right {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range rows {
		row(r)
	}
}

// The table of a run's test figures by class: one row per class and the macro average.
var (
	classHead    = []string{"class", "precision", "recall", "F1", "support"}
	classColumns = []column{{right: false}, {right: true}, {right: true}, {right: true}, {right: true}}
)

// classTitle is the line above a run's class table, the run's name set between mark and mark.
func classTitle(s Summary, mark string) string {
	k, n := len(s.TestClasses.Confusion), 0
	for _, row := range s.TestClasses.Confusion {
		for _, c := range row {
			n += c
		}
	}
	title := fmt.Sprintf("%s%s%s: the test by class (%d classes, %s examples; macro-F1 %s", mark, s.Name, mark, k, count(int64(n)), num(s.TestMacroF1, 3))
	if !math.IsNaN(s.TestMAE) {
		title += ", MAE " + num(s.TestMAE, 3)
	}
	return title + ")"
}

// classRows are a run's class table's rows: per class its precision, recall, F1 and number of
// test examples (a precision or recall that is undefined, "-"), then the macro average.
func classRows(s Summary) [][]string {
	m := s.TestClasses
	var rows [][]string
	total := 0
	for i, row := range m.Confusion {
		support := 0
		for _, c := range row {
			support += c
		}
		total += support
		rows = append(rows, []string{s.Classes[i], num(at(m.Precision, i), 3), num(at(m.Recall, i), 3), num(at(m.F1, i), 3), strconv.Itoa(support)})
	}
	return append(rows, []string{"macro avg", num(m.MacroPrecision, 3), num(m.MacroRecall, 3), num(m.MacroF1, 3), strconv.Itoa(total)})
}

// at is v[i], NaN past its end (a damaged record).
func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return math.NaN()
}

// CSVHeader is the CSV table's header: plain numbers in base units, empty when unknown. A table
// with runs of more than two classes has two more columns, test_macro_f1 and test_mae (the
// figures by class are in each run's run.jsonl).
var CSVHeader = []string{
	"run", "dir", "framework", "model", "device", "dropout", "params", "checkpoint_bytes",
	"epochs", "epochs_planned", "finished", "best_epoch", "best_valid_acc", "test_acc",
	"mean_epoch_seconds", "tokens_per_second", "peak_rss_mib", "peak_rss_method",
	"peak_heap_mib", "peak_gpu_mib",
}

// WriteCSV writes the table as CSV with CSVHeader.
func (t Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	classes := t.any(func(s Summary) bool { return s.TestClasses != nil })
	header := CSVHeader
	if classes {
		header = append(slices.Clip(header), "test_macro_f1", "test_mae")
	}
	cw.Write(header)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	i := func(v int64) string {
		if v <= 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	for _, s := range t.Rows {
		bestEpoch := ""
		if s.BestEpoch > 0 {
			bestEpoch = strconv.Itoa(s.BestEpoch)
		}
		record := []string{
			s.Name, s.Dir, s.Framework, s.Model, s.Device, f(s.Dropout), i(int64(s.Params)),
			i(s.CheckpointBytes), strconv.Itoa(s.Epochs), i(int64(s.EpochsPlanned)),
			strconv.FormatBool(s.Finished), bestEpoch, f(s.BestValidAcc), f(s.TestAcc),
			f(s.MeanEpochSeconds), f(s.TokensPerSecond), f(s.PeakRSSMiB), s.PeakRSSMethod,
			f(s.PeakHeapMiB), f(s.PeakGPUMiB),
		}
		if classes {
			record = append(record, f(s.TestMacroF1), f(s.TestMAE))
		}
		cw.Write(record)
	}
	cw.Flush()
	return cw.Error()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats v with prec decimals (-1: as few as needed), "-" for NaN.
func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// pct formats a fraction as a percentage with two decimals.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 2, 64) + "%"
}

// count formats a positive count with thousands separators, "-" for zero.
func count(n int64) string {
	if n <= 0 {
		return "-"
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
