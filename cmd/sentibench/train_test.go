package main

import (
	"path/filepath"
	"strings"
	"testing"
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
