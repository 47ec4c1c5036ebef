package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
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
		PeakRSSMiB: nan, PeakHeapMiB: nan, PeakGPUMiB: nan,
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
	}
	if !math.IsNaN(s.PeakRSSMiB) && s.PeakRSSMethod == "" && strings.HasPrefix(s.Framework, "torch") {
		s.PeakRSSMethod = "ru_maxrss" // torch_ref.py's peak_rss_mib
	}
	return s
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

// cells renders the table for text and Markdown.
func (t Table) cells() (head []string, rows [][]string) {
	for _, c := range columns {
		head = append(head, c.head)
	}
	for _, s := range t.Rows {
		row := make([]string, len(columns))
		for i, c := range columns {
			row[i] = c.cell(s)
		}
		rows = append(rows, row)
	}
	return head, rows
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

// WriteText writes the table with aligned columns for a terminal.
func (t Table) WriteText(w io.Writer) error {
	head, rows := t.cells()
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			switch {
			case columns[i].right:
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
	for _, n := range t.notes() {
		b.WriteString(n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the table as a GitHub Markdown table.
func (t Table) WriteMarkdown(w io.Writer) error {
	head, rows := t.cells()
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	row(head)
	b.WriteString("|")
	for _, c := range columns {
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
	if notes := t.notes(); len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString(strings.Replace(n, wholeProcess, `\*`, 1) + "\n\n")
		}
	}
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

// CSVHeader is the CSV table's header: plain numbers in base units, empty when unknown.
var CSVHeader = []string{
	"run", "dir", "framework", "model", "device", "dropout", "params", "checkpoint_bytes",
	"epochs", "epochs_planned", "finished", "best_epoch", "best_valid_acc", "test_acc",
	"mean_epoch_seconds", "tokens_per_second", "peak_rss_mib", "peak_rss_method",
	"peak_heap_mib", "peak_gpu_mib",
}

// WriteCSV writes the table as CSV with CSVHeader.
func (t Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
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
		cw.Write([]string{
			s.Name, s.Dir, s.Framework, s.Model, s.Device, f(s.Dropout), i(int64(s.Params)),
			i(s.CheckpointBytes), strconv.Itoa(s.Epochs), i(int64(s.EpochsPlanned)),
			strconv.FormatBool(s.Finished), bestEpoch, f(s.BestValidAcc), f(s.TestAcc),
			f(s.MeanEpochSeconds), f(s.TokensPerSecond), f(s.PeakRSSMiB), s.PeakRSSMethod,
			f(s.PeakHeapMiB), f(s.PeakGPUMiB),
		})
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
