package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
