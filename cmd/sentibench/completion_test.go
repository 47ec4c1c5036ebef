package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagCompletions: the shell completion offers the fixed values of --model, --device and
// --lr-schedule, and the run directories (holding config.json) for --resume and eval's --run.
func TestFlagCompletions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "train", "--model", ""}, []string{"lstm", "cnn", "bigru"}},
		{[]string{"__complete", "train", "--device", ""}, []string{"cpu", "cuda", "cuda:0"}},
		{[]string{"__complete", "train", "--lr-schedule", ""}, []string{"constant", "linear", "cosine", "cosine-restarts", "polynomial"}},
		{[]string{"__complete", "distill", "--student", ""}, []string{"cnn", "lstm"}},
	} {
		out, _, err := run(t, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if strings.Join(lines[:len(lines)-1], " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: completions %q, want %q", c.args, lines, c.want)
		}
	}

	dir := t.TempDir()
	for _, name := range []string{"lstm-1", "cnn-2", "not-a-run"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"lstm-1", "cnn-2"} {
		if err := os.WriteFile(filepath.Join(dir, name, "config.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"__complete", "train", "--resume", dir + "/"}, {"__complete", "eval", "--run", dir + "/"}} {
		out, _, err := run(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(dir, "cnn-2") + "\n" + filepath.Join(dir, "lstm-1") + "\n"
		if !strings.HasPrefix(out, want) {
			t.Errorf("%v: completions %q, want the two run directories", args, out)
		}
	}
}
