package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistillCommand trains a tiny teacher, distils it with the data settings taken from the
// teacher, resumes the finished distillation, and checks the command's errors.
func TestDistillCommand(t *testing.T) {
	dir := t.TempDir()
	teacher := filepath.Join(dir, "teacher")
	small := []string{"--epochs", "2", "--batch-size", "16", "--embedding-dim", "16", "--threads", "2", "--progress", "quiet"}
	if _, errOut, err := run(t, append([]string{"train", "--model", "cnn", "--data", "sample", "--limit", "40",
		"--vocab-size", "1500", "--filters", "12", "--run", teacher, "-q"}, small...)...); err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	student := filepath.Join(dir, "student")
	out, errOut, err := run(t, append([]string{"distill", "--teacher", teacher, "--student", "cnn", "--filters", "4",
		"--temperature", "3", "--alpha", "0.2", "--augment", "1", "--train-baseline", "--throughput-reviews", "32",
		"--run", student, "-q"}, small...)...)
	if err != nil {
		t.Fatalf("distill: %v\n%s", err, errOut)
	}
	for _, want := range []string{"KD (Hinton et al.), T 3, alpha 0.2; transfer set 56 train + 0 unlabelled + 56 augmented reviews",
		"teacher ", "distilled student ", "student alone ", "cnn (emb 16, 3x4 filters)", "of the teacher-student gap"} {
		if !strings.Contains(out, want) && !(want == "of the teacher-student gap" && strings.Contains(out, "no gap to close")) {
			t.Errorf("distill output lacks %q:\n%s", want, out)
		}
	}
	md, err := os.ReadFile(filepath.Join(student, "distill_report.md"))
	if err != nil || !strings.Contains(string(md), "| distilled student | cnn (emb 16, 3x4 filters) |") {
		t.Errorf("distill_report.md: %v\n%s", err, md)
	}
	// The data settings came from the teacher: the sample with --limit 40 (56 train reviews).
	again, errOut, err := run(t, "distill", "--resume", student, "-q")
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, errOut)
	}
	if first, second := strings.SplitN(out, "\n", 2)[0], strings.SplitN(again, "\n", 2)[0]; first != second {
		t.Errorf("the resumed report starts %q, want %q", second, first)
	}
	// A finished run's report measured again over another number of test reviews: the report
	// file says so, and the run's settings stay as they were.
	settingsBefore, _ := os.ReadFile(filepath.Join(student, "distill.json"))
	if _, errOut, err := run(t, "distill", "--resume", student, "--throughput-reviews", "8", "--threads", "1", "-q"); err != nil {
		t.Fatalf("resume --throughput-reviews 8: %v\n%s", err, errOut)
	}
	if md, err := os.ReadFile(filepath.Join(student, "distill_report.md")); err != nil || !strings.Contains(string(md), "over 8 test reviews, 1 threads") {
		t.Errorf("the report measured again over 8 test reviews: %v\n%s", err, md)
	}
	if settingsAfter, _ := os.ReadFile(filepath.Join(student, "distill.json")); string(settingsAfter) != string(settingsBefore) {
		t.Errorf("distill.json changed by a report measured again:\n%s\nwas\n%s", settingsAfter, settingsBefore)
	}

	for _, c := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"distill", "--student", "cnn"}, true, "--teacher RUN_DIR is required"},
		{[]string{"distill", "--resume", student, "--alpha", "0.3"}, true, "give no other flags"},
		{[]string{"distill", "--resume", student, "--throughput-reviews", "0"}, true, "--throughput-reviews 0: with --resume"},
		{[]string{"distill", "--teacher", filepath.Join(dir, "nope"), "--run", filepath.Join(dir, "x")}, false, "does not exist"},
		{[]string{"distill", "--teacher", teacher, "--student", "gru", "--run", filepath.Join(dir, "y")}, true, "--student gru: want cnn or lstm"},
		{[]string{"train", "--resume", student}, false, "sentibench distill --resume"},
		{[]string{"distill", "--teacher", teacher, "--glove", filepath.Join(dir, "missing-vectors.txt"), "--run", filepath.Join(dir, "z")}, false, "missing-vectors.txt"},
		// Options that do not go together are usage errors naming a flag, and leave nothing.
		{[]string{"distill", "--teacher", teacher, "--alpha", "1", "--augment", "1", "--run", filepath.Join(dir, "c1")}, true, "--alpha 1: alpha 1 ignores the teacher"},
		{[]string{"distill", "--teacher", teacher, "--unsup-limit", "5", "--run", filepath.Join(dir, "c2")}, true, "--unsup-limit 5: a limit of unlabelled reviews needs their archive"},
		{[]string{"distill", "--teacher", teacher, "--baseline", teacher, "--train-baseline", "--run", filepath.Join(dir, "c3")}, true, "--train-baseline: give a baseline run"},
		{[]string{"distill", "--teacher", teacher, "--augment", "1", "--mask-prob", "0", "--ngram-prob", "0", "--run", filepath.Join(dir, "c4")}, true, "--augment 1: augmented copies with neither masking"},
	} {
		_, _, err := run(t, append(c.args, "--progress", "quiet")...)
		if err == nil || isUsage(err) != c.usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v (usage %v), want an error with %q (usage %v)", c.args, err, isUsage(err), c.want, c.usage)
		}
	}
	for _, name := range []string{"c1", "c2", "c3", "c4"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("the refused distillation left %s (%v)", name, err)
		}
	}
}
