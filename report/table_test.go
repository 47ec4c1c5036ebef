package report

import (
	"bytes"
	"encoding/csv"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// benchRuns writes the run directories of a small bench: cnn and lstm on the CPU and on a GPU,
// one of them unfinished, and one whose peak RSS is whole-process.
func benchRuns(t *testing.T) []*Run {
	t.Helper()
	base := t.TempDir()
	specs := []struct {
		name string
		spec runSpec
	}{
		{"cnn-d0.5-cpu", cnnFinished},
		{"cnn-d0.2-cuda", runSpec{model: "cnn", dropout: 0.2, device: "cuda", planned: 5, done: 5, finished: true,
			seconds: 6, rssMiB: 900, rssMethod: "vmhwm", gpuMiB: 1450}},
		{"lstm-d0.5-cpu", runSpec{model: "lstm", dropout: 0.5, device: "cpu", planned: 5, done: 3,
			seconds: 410, rssMiB: 2600, rssMethod: "ru_maxrss"}},
		{"lstm-d0.5-cuda", runSpec{model: "lstm", dropout: 0.5, device: "cuda", planned: 5, done: 5, finished: true,
			seconds: 31, rssMiB: 1800, rssMethod: "vmhwm", gpuMiB: 5200}},
	}
	var dirs []string
	for _, s := range specs {
		d := filepath.Join(base, s.name)
		writeRun(t, d, s.spec)
		dirs = append(dirs, d)
	}
	runs, err := LoadRuns(dirs)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestTableText(t *testing.T) {
	var b bytes.Buffer
	if err := Compare(benchRuns(t)).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 6 {
		t.Fatalf("%d lines", len(lines))
	}
	// Every column is aligned: the header's and the rows' right-aligned cells end at the same
	// place, so the rows of the table proper have the same width.
	for _, l := range lines[1:6] {
		if len(l) != len(lines[0]) {
			t.Errorf("line %q is %d wide, header %d", l, len(l), len(lines[0]))
		}
	}
	for _, want := range []string{
		"run", "best valid acc", "peak RSS MiB", "peak GPU MiB",
		"cnn-d0.5-cpu", "1,190", "3/5", "1,450", "5,200", "s/epoch",
		"2,590*", // ru_maxrss, footnoted
		"* whole-process peak RSS", "no final record",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text table lacks %q", want)
		}
	}
	// The unfinished lstm has no test accuracy and no GPU: dashes.
	for _, l := range lines {
		if strings.HasPrefix(l, "lstm-d0.5-cpu") && strings.Count(" "+strings.Join(strings.Fields(l), " ")+" ", " - ") != 2 {
			t.Errorf("unfinished CPU run line %q: want dashes for test acc and GPU", l)
		}
	}
}

func TestTableMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Compare(benchRuns(t)).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	n := len(columns) + 1
	for _, l := range lines[:6] {
		if strings.Count(l, "|") != n {
			t.Errorf("markdown line %q has %d pipes, want %d", l, strings.Count(l, "|"), n)
		}
	}
	if !strings.HasPrefix(lines[1], "|---|---|---|---|---:|") {
		t.Errorf("alignment row %q", lines[1])
	}
	if !strings.Contains(out, `\* whole-process`) {
		t.Errorf("markdown lacks the escaped footnote:\n%s", out)
	}
}

func TestTableCSV(t *testing.T) {
	runs := benchRuns(t)
	var b bytes.Buffer
	if err := Compare(runs).WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("%d records, header %v", len(recs), recs[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for i, r := range runs {
		row, s := recs[i+1], Summarize(r)
		if row[col["run"]] != r.Name || row[col["model"]] != s.Model {
			t.Errorf("row %d: %v", i, row)
		}
		if got, _ := strconv.ParseFloat(row[col["mean_epoch_seconds"]], 64); got != s.MeanEpochSeconds {
			t.Errorf("%s: mean_epoch_seconds %q, want %v", r.Name, row[col["mean_epoch_seconds"]], s.MeanEpochSeconds)
		}
		if got, _ := strconv.ParseInt(row[col["checkpoint_bytes"]], 10, 64); got != r.CheckpointBytes {
			t.Errorf("%s: checkpoint_bytes %q, want %d", r.Name, row[col["checkpoint_bytes"]], r.CheckpointBytes)
		}
	}
	// Unknown figures are empty cells, not "NaN" or "-".
	lstmCPU := recs[3]
	if lstmCPU[col["test_acc"]] != "" || lstmCPU[col["peak_gpu_mib"]] != "" || lstmCPU[col["finished"]] != "false" {
		t.Errorf("unfinished CPU run row %v", lstmCPU)
	}
	if lstmCPU[col["peak_rss_method"]] != "ru_maxrss" {
		t.Errorf("peak_rss_method %q", lstmCPU[col["peak_rss_method"]])
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"text": FormatText, "Markdown": FormatMarkdown, "md": FormatMarkdown, "csv": FormatCSV} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("html"); err == nil || !strings.Contains(err.Error(), "html") {
		t.Errorf("ParseFormat(html): %v", err)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 7: "7", 999: "999", 1000: "1,000", 4810857: "4,810,857"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
