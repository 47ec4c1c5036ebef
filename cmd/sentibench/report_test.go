package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// runCmd runs sentibench with args and returns its stdout, stderr and error.
func runCmd(args ...string) (string, string, error) {
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// writeRunDir writes a minimal finished run: two epochs and the final record.
func writeRunDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for e := 1; e <= 2; e++ {
		b, _ := json.Marshal(train.EpochRecord{Epoch: e, TrainLoss: 0.5, TrainAcc: 0.8, ValidLoss: 0.4 - 0.01*float64(e),
			ValidAcc: 0.85, EpochStats: train.EpochStats{Seconds: 47, PeakRSSMiB: 1200, PeakRSSMethod: "vmhwm"}})
		lines = append(lines, string(b))
	}
	b, _ := json.Marshal(train.FinalRecord{TestAcc: 0.8706, TestLoss: 0.31, BestEpoch: 2, BestValidAcc: 0.85,
		Model: "cnn", Dropout: 0.5, Params: 2_580_201, Epochs: 2, Device: "cpu", Version: "dev"})
	lines = append(lines, string(b))
	if err := os.WriteFile(filepath.Join(dir, train.RunLogFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReportCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cnn-run")
	writeRunDir(t, dir)
	charts := filepath.Join(t.TempDir(), "charts")
	out, errOut, err := runCmd("report", dir, "--format", "csv", "--charts", charts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "run,dir,framework,model,") || !strings.Contains(out, "cnn-run,") || !strings.Contains(out, ",0.8706,") {
		t.Errorf("csv output:\n%s", out)
	}
	if !strings.Contains(errOut, "wrote 5 charts to "+charts) {
		t.Errorf("stderr %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(charts, "epoch_time.png")); err != nil {
		t.Error(err)
	}
	out, _, err = runCmd("report", dir)
	if err != nil || !strings.Contains(out, "87.06%") {
		t.Errorf("text report: %v\n%s", err, out)
	}
}

func TestReportCommandErrors(t *testing.T) {
	base := t.TempDir()
	good := filepath.Join(base, "good")
	writeRunDir(t, good)
	corrupt := filepath.Join(base, "corrupt")
	writeRunDir(t, corrupt)
	log := filepath.Join(corrupt, train.RunLogFile)
	data, _ := os.ReadFile(log)
	os.WriteFile(log, bytes.Replace(data, []byte(`"epoch":2`), []byte(`"epoch":2,,`), 1), 0o644)

	cases := []struct {
		args  []string
		usage bool // exit code 2 rather than 1
		want  string
	}{
		{[]string{"report"}, true, "at least one run directory"},
		{[]string{"report", good, "--format", "xml"}, true, `unknown format "xml"`},
		{[]string{"report", filepath.Join(base, "missing")}, false, "missing: no such file"},
		{[]string{"report", base}, false, "not a run directory"},
		{[]string{"report", good, corrupt}, false, filepath.Join("corrupt", "run.jsonl") + ":2:"},
	}
	for _, c := range cases {
		_, _, err := runCmd(c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		var ue usageError
		if errors.As(err, &ue) != c.usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %q (usage error: %v), want %q (usage: %v)", c.args, err, errors.As(err, &ue), c.want, c.usage)
		}
	}
}

// TestReportClassesCLI trains a 5-class run (ordinal: numbers) and a 3-class one and reports
// them: each run's test macro-F1 (and the 5-class run's MAE) as its run log records them, and a
// table of the test by class naming its classes.
func TestReportClassesCLI(t *testing.T) {
	dir := t.TempDir()
	five, three := filepath.Join(dir, "five"), filepath.Join(dir, "three")
	for _, c := range []struct {
		runDir, file string
		classes      []string
	}{
		{five, "five.jsonl", []string{"4", "2", "5", "1", "3"}},
		{three, "three.csv", []string{"sports", "politics", "science"}},
	} {
		if _, errOut, err := run(t, classTrainArgs(writeClasses(t, dir, c.file, c.classes, 20), c.runDir, "--epochs", "3")...); err != nil {
			t.Fatalf("train: %v\n%s", err, errOut)
		}
	}
	out, errOut, err := runCmd("report", five, three)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, errOut)
	}
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	for i, c := range []struct {
		runDir  string
		classes []string
		ordinal bool
	}{{five, []string{"1", "2", "3", "4", "5"}, true}, {three, []string{"politics", "science", "sports"}, false}} {
		log, err := train.ReadRunLog(c.runDir)
		if err != nil || log.Final.TestMetrics == nil {
			t.Fatalf("%s: %v, test metrics %v", c.runDir, err, log.Final.TestMetrics)
		}
		m := log.Final.TestMetrics
		wantMAE := "-"
		if c.ordinal {
			wantMAE = strconv.FormatFloat(*m.MAE, 'f', 3, 64)
		}
		f := strings.Fields(lines[2+i])
		if f[0] != filepath.Base(c.runDir) || f[len(f)-2] != strconv.FormatFloat(m.MacroF1, 'f', 3, 64) || f[len(f)-1] != wantMAE {
			t.Errorf("%s's line %q: want macro-F1 %.3f and MAE %s", c.runDir, lines[2+i], m.MacroF1, wantMAE)
		}
		title := filepath.Base(c.runDir) + ": the test by class (" + strconv.Itoa(len(c.classes)) + " classes"
		at := strings.Index(out, title)
		if at < 0 {
			t.Errorf("no class table for %s", c.runDir)
			continue
		}
		table := strings.Split(out[at:], "\n")
		for k, class := range c.classes {
			row := strings.Fields(table[3+k])
			if row[0] != class || row[3] != strconv.FormatFloat(m.F1[k], 'f', 3, 64) {
				t.Errorf("%s: class row %q, want %s with F1 %.3f", c.runDir, table[3+k], class, m.F1[k])
			}
		}
	}
}
