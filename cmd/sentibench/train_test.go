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
