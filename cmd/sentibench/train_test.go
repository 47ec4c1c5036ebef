package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// TestTrainResumeFlags checks that --resume takes the run's own settings but --threads, which
// changes the speed only.
func TestTrainResumeFlags(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "cnn")
	if _, errOut, err := run(t, "train", "--model", "cnn", "--data", "sample", "--limit", "40", "--epochs", "1",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--vocab-size", "500", "--threads", "2",
		"--run", runDir, "-q"); err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	first, errOut, err := run(t, "train", "--resume", runDir, "--threads", "1", "-q")
	if err != nil {
		t.Fatalf("resume --threads 1: %v\n%s", err, errOut)
	}
	if !strings.Contains(first, "test accuracy") {
		t.Errorf("the resumed (finished) run printed no test line:\n%s", first)
	}
	_, _, err = run(t, "train", "--resume", runDir, "--dropout", "0.1", "-q")
	if err == nil || !isUsage(err) || !strings.Contains(err.Error(), "give no other training flags") {
		t.Errorf("resume with --dropout: got %v, want a usage error", err)
	}
}

// TestGivenValuesChecked: a size, rate or dropout that the program would replace by its default
// is a usage error when given, in every command that takes it; left out, the default applies.
func TestGivenValuesChecked(t *testing.T) {
	for _, c := range []struct {
		flag string
		args []string
	}{
		{"--lr 0", []string{"train", "--lr", "0"}},
		{"--threads -1", []string{"train", "--threads", "-1"}},
		{"--batch-size 0", []string{"train", "--batch-size", "0"}},
		{"--epochs 0", []string{"train", "--epochs", "0"}},
		{"--hidden 0", []string{"train", "--hidden", "0"}},
		{"--layers -2", []string{"train", "--layers", "-2"}},
		{"--embedding-dim 0", []string{"train", "--embedding-dim", "0"}},
		{"--filters 0", []string{"train", "--filters", "0"}},
		{"--dropout -0.1", []string{"train", "--dropout", "-0.1"}},
		{"--teacher-batch 0", []string{"distill", "--teacher", "x", "--teacher-batch", "0"}},
		{"--dropout -1", []string{"distill", "--teacher", "x", "--dropout", "-1"}},
		{"--threads 0", []string{"eval", "--run", "x", "--threads", "0"}},
		{"--threads -4", []string{"predict", "--run", "x", "--threads", "-4", "good"}},
		{"--batch-size 0", []string{"embed", "--batch-size", "0"}},
		{"--max-batch 0", []string{"serve", "--run", "x", "--max-batch", "0"}},
		{"--max-queue -1", []string{"serve", "--run", "x", "--max-queue", "-1"}},
		{"--window 0", []string{"wordvec", "--out", "x", "--window", "0"}},
		{"--min-count 0", []string{"wordvec", "--out", "x", "--min-count", "0"}},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !isUsage(err) || !strings.HasPrefix(err.Error(), c.flag+":") {
			t.Errorf("%v: got %v, want a usage error naming %s", c.args, err, c.flag)
		}
	}
}

// TestTrainLogJSON: with --log-format json every line train writes on stdout is a JSON record,
// and the run directory, data, model, parameters, epoch and test records carry their figures
// as typed fields, the same as run.jsonl's; the progress stays on stderr.
func TestTrainLogJSON(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "cnn")
	out, errOut, err := run(t, "train", "--model", "cnn", "--data", "sample", "--limit", "200", "--epochs", "1",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--vocab-size", "500", "--threads", "1",
		"--progress", "lines", "--run", runDir, "--log-format", "json")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	records := map[string]map[string]any{}
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v\n%s", line, err, out)
		}
		if _, ok := rec["time"].(string); !ok || rec["level"] == nil {
			t.Errorf("record without time or level: %s", line)
		}
		msg, _ := rec["msg"].(string)
		if records[msg] != nil {
			t.Errorf("a second %q record: %s", msg, line)
		}
		records[msg] = rec
	}
	logged, err := os.ReadFile(filepath.Join(runDir, train.RunLogFile))
	if err != nil {
		t.Fatal(err)
	}
	var epoch train.EpochRecord
	var final train.FinalRecord
	lines := strings.Split(strings.TrimSpace(string(logged)), "\n")
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &epoch) != nil || json.Unmarshal([]byte(lines[1]), &final) != nil {
		t.Fatalf("run.jsonl:\n%s", logged)
	}
	for msg, want := range map[string]map[string]any{
		"run directory": {"run": runDir},
		"data":          {"train": float64(final.Sizes["train"]), "valid": float64(final.Sizes["valid"]), "test": float64(final.Sizes["test"])},
		"model":         {"model": "cnn", "dropout": 0.5, "batch_size": 16.0},
		"parameters":    {"params": float64(final.Params)},
		"epoch": {"epoch": 1.0, "train_loss": epoch.TrainLoss, "train_acc": epoch.TrainAcc, "valid_loss": epoch.ValidLoss,
			"valid_acc": epoch.ValidAcc, "seconds": epoch.Seconds, "peak_rss_mib": epoch.PeakRSSMiB},
		"test": {"run": runDir, "test_loss": final.TestLoss, "test_acc": final.TestAcc, "best_epoch": 1.0,
			"peak_rss_mib": final.PeakRSSMiB, "model": "cnn", "params": float64(final.Params)},
	} {
		rec := records[msg]
		if rec == nil {
			t.Errorf("no %q record in\n%s", msg, out)
			continue
		}
		for key, v := range want {
			if rec[key] != v {
				t.Errorf("%s record: %s = %v (%T), want %v", msg, key, rec[key], rec[key], v)
			}
		}
	}
	if final.Sizes["train"] == 0 || final.Params == 0 || epoch.PeakRSSMiB <= 0 {
		t.Errorf("run.jsonl without figures: %+v %+v", final, epoch)
	}
	if errOut == "" || strings.Contains(errOut, `"msg"`) {
		t.Errorf("stderr (the progress) %q: want the progress lines, no record", errOut)
	}

	// -q: the test record alone.
	out, errOut, err = run(t, "train", "--resume", runDir, "-q", "--log-format", "json")
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, errOut)
	}
	var rec map[string]any
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &rec) != nil || rec["msg"] != "test" || rec["test_acc"] != final.TestAcc {
		t.Errorf("train -q --log-format json: %q, want the test record alone", out)
	}
}
