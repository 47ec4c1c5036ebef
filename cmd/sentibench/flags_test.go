package main

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runMain runs `sentibench ARGS...` as a process (the test binary's TestMainChild) and
// returns its stderr and exit code.
func runMain(t *testing.T, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainChild$")
	cmd.Env = append(os.Environ(), mainChildEnv+"="+strings.Join(args, "\n"))
	var errOut strings.Builder
	cmd.Stderr = &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return errOut.String(), 0
	case errors.As(err, &ee):
		return errOut.String(), ee.ExitCode()
	}
	t.Fatalf("%v: %v", args, err)
	return "", 0
}

// TestFlagErrorsExit2: every flag value that the program cannot use, or would replace by its
// default without a word, ends the process with exit code 2 and a message that begins with the
// flag and its value; nothing else is done first (no data read, no run directory made).
func TestFlagErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string // the message's beginning, after "sentibench: "
	}{
		// issue 19, defect 6: values replaced silently
		{[]string{"train", "--vocab-size", "0"}, "--vocab-size 0:"},
		{[]string{"serve", "--run", dir, "--request-timeout", "0s"}, "--request-timeout 0s:"},
		{[]string{"serve", "--run", dir, "--request-timeout", "-1s"}, "--request-timeout -1s:"},
		{[]string{"serve", "--run", dir, "--batch-wait", "0s"}, "--batch-wait 0s:"},
		{[]string{"serve", "--run", dir, "--shutdown-timeout", "0s"}, "--shutdown-timeout 0s:"},
		{[]string{"serve", "--run", dir, "--shutdown-delay", "-1s"}, "--shutdown-delay -1s:"},
		{[]string{"distill", "--teacher", dir, "--vocab-size", "0"}, "--vocab-size 0:"},
		// issue 19, consistency: these exited 1
		{[]string{"train", "--dropout", "1.5"}, "--dropout 1.5:"},
		{[]string{"train", "--dropout", "NaN"}, "--dropout NaN:"},
		{[]string{"train", "--lr", "Inf"}, "--lr +Inf:"},
		{[]string{"train", "--model", "transformer"}, "--model transformer:"},
		{[]string{"train", "--device", "tpu"}, "--device tpu:"},
		{[]string{"train", "--clip-norm", "-1"}, "--clip-norm -1:"},
		{[]string{"train", "--patience", "-1"}, "--patience -1:"},
		{[]string{"train", "--limit", "-5"}, "--limit -5:"},
		{[]string{"train", "--max-len", "-1"}, "--max-len -1:"},
		{[]string{"train", "--text-column", ""}, "--text-column :"},
		{[]string{"data", "info", "--label-field", ""}, "--label-field :"},
		{[]string{"train", "--max-batches", "-1"}, "--max-batches -1:"},
		{[]string{"train", "--pool", "mean"}, "--pool mean:"},
		{[]string{"train", "--truncate-head", "-3"}, "--truncate-head -3:"},
		{[]string{"train", "--dropout", "-0.1"}, "--dropout -0.1:"}, // exited 2 already
		// combinations, checked by train.Config.Check
		{[]string{"train", "--model", "cnn", "--encoder", "x", "--data", "sample"}, "--encoder x:"},
		{[]string{"train", "--model", "bigru", "--data", "sample"}, "--encoder:"},
		{[]string{"train", "--model", "cnn", "--freeze-embedding", "--data", "sample"}, "--freeze-embedding:"},
		{[]string{"train", "--model", "cnn", "--pool", "concat", "--data", "sample"}, "--pool concat:"},
		{[]string{"bench", "--models", "bigru", "--data", "sample", "--dir", dir}, "--encoder:"},
		// the other commands
		{[]string{"distill", "--teacher", dir, "--student", "bigru"}, "--student bigru:"},
		{[]string{"distill", "--teacher", dir, "--alpha", "1.5"}, "--alpha 1.5:"},
		{[]string{"distill", "--teacher", dir, "--temperature", "0"}, "--temperature 0:"},
		{[]string{"distill", "--teacher", dir, "--loss", "l1"}, "--loss l1:"},
		{[]string{"distill", "--teacher", dir, "--mask-prob", "2"}, "--mask-prob 2:"},
		{[]string{"distill", "--teacher", dir, "--augment", "-1"}, "--augment -1:"},
		{[]string{"eval", "--run", dir, "--split", "every"}, "--split every:"},
		{[]string{"eval", "--run", dir, "--checkpoint", "first"}, "--checkpoint first:"},
		{[]string{"predict", "--run", dir, "--checkpoint", "first", "good"}, "--checkpoint first:"},
		{[]string{"serve", "--run", dir, "--checkpoint", "first"}, "--checkpoint first:"},
		{[]string{"embed", "--encoder", "x", "--device", "tpu"}, "--device tpu:"},
		{[]string{"embed", "--encoder", "x", "--limit", "-1"}, "--limit -1:"},
		{[]string{"bench", "--models", "lstm,transformer"}, "--models transformer:"},
		{[]string{"bench", "--dropouts", "0.5,1.5"}, "--dropouts 1.5:"},
		{[]string{"bench", "--devices", "cpu,tpu"}, "--devices tpu:"},
		{[]string{"wordvec", "--out", "x", "--sample", "NaN"}, "--sample NaN:"},
		{[]string{"wordvec", "--out", "x", "--lr", "-Inf"}, "--lr -Inf:"},
		{[]string{"train", "--progress", "fancy"}, "--progress fancy:"},
		{[]string{"train", "--blas", "/nonexistent/libcblas.so"}, "--blas /nonexistent/libcblas.so:"},
		{[]string{"serve", "--run", dir, "--blas", "mkl"}, "--blas mkl:"},
		{[]string{"report", "--format", "html", dir}, "--format html:"},
	} {
		stderr, code := runMain(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, "sentibench: "+c.want) {
			t.Errorf("%v: exit code %d, stderr %q; want 2 and a message beginning %q", c.args, code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a refused command line left %d files in %s", len(entries), dir)
	}
}

// TestFlagValuesAccepted: the values that mean something stay accepted (0 where it is
// documented, a zero shutdown delay, 0 words for data info: all of them).
func TestFlagValuesAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"data", "info", "--data", "sample", "--vocab-size", "0", "--limit", "20", "--progress", "quiet"},
		{"serve", "--run", t.TempDir(), "--shutdown-delay", "0s"},
		{"train", "--model", "cnn", "--clip-norm", "0", "--patience", "0", "--data", "nowhere.tsv"},
	} {
		_, _, err := run(t, args...)
		if isUsage(err) {
			t.Errorf("%v: %v, want no usage error", args, err)
		}
	}
}

// TestThreadsClamped: --threads over the number of cores becomes that number, with one line
// saying so; up to it, it stays as given.
func TestThreadsClamped(t *testing.T) {
	cores := runtime.NumCPU()
	for _, c := range []struct {
		given, want int
		line        bool
	}{{cores + 1, cores, true}, {10000, cores, true}, {cores, cores, false}, {1, 1, false}} {
		var threads int
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().IntVar(&threads, "threads", 0, "")
		cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error { return checkGivenValues(c) }
		var errOut strings.Builder
		cmd.SetErr(&errOut)
		cmd.SetArgs([]string{"--threads", strconv.Itoa(c.given)})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(errOut.String(), "--threads "+strconv.Itoa(c.given)+" is more than the")
		if threads != c.want || said != c.line {
			t.Errorf("--threads %d: got %d (stderr %q), want %d (a line: %v)", c.given, threads, errOut.String(), c.want, c.line)
		}
	}
}

// TestErrorsNameTheCommand: the errors of eval, predict and serve name that command, not the
// train package that reads the run.
func TestErrorsNameTheCommand(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"eval", "--run", dir},
		{"predict", "--run", dir, "good"},
		{"serve", "--run", dir, "--addr", "127.0.0.1:0"},
	} {
		stderr, code := runMain(t, args...)
		want := "sentibench: " + args[0] + ": " + dir + " is not a run directory"
		if code != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("%v: exit code %d, stderr %q; want 1 and %q", args, code, stderr, want)
		}
	}
}
