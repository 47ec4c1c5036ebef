package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// writeClassRun writes a finished run of IMDB's four rating levels: writeRun's cnn, with the
// labels in config.json and the test's figures by class in the final record (the level 3-4 never
// predicted: its precision undefined).
func writeClassRun(t *testing.T, dir string) {
	t.Helper()
	writeRun(t, dir, cnnFinished)
	cfgPath := filepath.Join(dir, ConfigFile)
	var cfg map[string]any
	b, err := os.ReadFile(cfgPath)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg["labels"] = []string{"1-2", "3-4", "7-8", "9-10"}
	writeJSON(t, cfgPath, cfg)

	logPath := filepath.Join(dir, train.RunLogFile)
	b, err = os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var final train.FinalRecord
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil {
		t.Fatal(err)
	}
	mae := 2.6875
	final.TestMetrics = &train.ClassMetrics{
		Confusion:      [][]int{{2, 0, 1, 4}, {0, 0, 9, 1}, {0, 0, 6, 1}, {0, 0, 2, 6}},
		Precision:      train.Ratios{1, math.NaN(), 1.0 / 3, 0.5},
		Recall:         train.Ratios{2.0 / 7, 0, 6.0 / 7, 0.75},
		F1:             []float64{0.4444444444444444, 0, 0.48, 0.6},
		MacroPrecision: 0.4583333333333333, MacroRecall: 0.4732142857142857, MacroF1: 0.3811111111111111,
		MAE: &mae,
	}
	line, err := json.Marshal(final)
	if err != nil {
		t.Fatal(err)
	}
	lines[len(lines)-1] = string(line)
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReportClasses: a run of more than two classes adds the test macro-F1 and MAE columns
// ("-" for a binary run beside it) and a table of its test by class (its class names, an
// undefined precision "-", the macro average); CSV gets the two columns. A table of binary runs
// has none of it.
func TestReportClasses(t *testing.T) {
	base := t.TempDir()
	binary, rating := filepath.Join(base, "cnn-binary"), filepath.Join(base, "cnn-rating4")
	writeRun(t, binary, cnnFinished)
	writeClassRun(t, rating)

	var b bytes.Buffer
	if _, err := Write(&b, []string{binary, rating}, Options{Format: FormatText}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	if !strings.HasSuffix(lines[0], "test macro-F1  test MAE") {
		t.Errorf("header %q: want the macro-F1 and MAE columns last", lines[0])
	}
	if f := strings.Fields(lines[2]); lines[2] == "" || f[len(f)-2] != "-" || f[len(f)-1] != "-" {
		t.Errorf("the binary run's line %q: want - for macro-F1 and MAE", lines[2])
	}
	if f := strings.Fields(lines[3]); lines[3] == "" || f[len(f)-2] != "0.381" || f[len(f)-1] != "2.688" {
		t.Errorf("the rating run's line %q: want macro-F1 0.381 and MAE 2.688", lines[3])
	}
	for _, want := range []string{
		"cnn-rating4: the test by class (4 classes, 32 examples; macro-F1 0.381, MAE 2.688)\n" +
			"class      precision  recall     F1  support\n" +
			"---------  ---------  ------  -----  -------\n" +
			"1-2            1.000   0.286  0.444        7\n" +
			"3-4                -   0.000  0.000       10\n" +
			"7-8            0.333   0.857  0.480        7\n" +
			"9-10           0.500   0.750  0.600        8\n" +
			"macro avg      0.458   0.473  0.381       32\n",
	} {
		if !strings.HasSuffix(out, want) {
			t.Errorf("the text report does not end with the class table:\n%s", want)
		}
	}
	if strings.Contains(out, "cnn-binary: the test by class") {
		t.Error("a class table for the binary run")
	}

	b.Reset()
	if _, err := Write(&b, []string{binary, rating}, Options{Format: FormatMarkdown}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		" test macro-F1 | test MAE |\n",
		"---:|---:|\n",
		"\n**cnn-rating4**: the test by class (4 classes, 32 examples; macro-F1 0.381, MAE 2.688)\n\n" +
			"| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n| 1-2 | 1.000 | 0.286 | 0.444 | 7 |\n",
		"| macro avg | 0.458 | 0.473 | 0.381 | 32 |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}

	b.Reset()
	if _, err := Write(&b, []string{binary, rating}, Options{Format: FormatCSV}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if h := recs[0]; len(h) != len(CSVHeader)+2 || h[len(h)-2] != "test_macro_f1" || h[len(h)-1] != "test_mae" {
		t.Errorf("CSV header %q", h)
	}
	if r := recs[1]; r[len(r)-2] != "" || r[len(r)-1] != "" {
		t.Errorf("the binary run's CSV record %q: want empty macro-F1 and MAE", r)
	}
	if r := recs[2]; r[len(r)-2] != "0.3811111111111111" || r[len(r)-1] != "2.6875" {
		t.Errorf("the rating run's CSV record %q", r)
	}

	// Binary runs alone: the table they always had.
	for _, f := range []Format{FormatText, FormatMarkdown, FormatCSV} {
		b.Reset()
		if _, err := Write(&b, []string{binary}, Options{Format: f}); err != nil {
			t.Fatal(err)
		}
		if s := strings.ToLower(b.String()); strings.Contains(s, "macro") || strings.Contains(s, "mae") || strings.Contains(s, "by class") {
			t.Errorf("%s report of a binary run:\n%s", f, b.String())
		}
	}
}
