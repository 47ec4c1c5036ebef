package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

func TestServeCommandErrors(t *testing.T) {
	cases := []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"serve"}, true, "--run RUN_DIR is required"},
		{[]string{"serve", "--run", t.TempDir()}, false, "not a run directory"},
		{[]string{"serve", "--run", "x", "--max-batch", "many"}, true, "invalid argument"},
	}
	for _, c := range cases {
		_, _, err := runCmd(c.args...)
		var ue usageError
		if err == nil || errors.As(err, &ue) != c.usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q (usage error: %v)", c.args, err, c.want, c.usage)
		}
	}
}

const mainChildEnv = "SENTIBENCH_MAIN_CHILD"

// TestMainChild is the `sentibench` process of the tests that run one (the test binary runs
// main with the arguments in $SENTIBENCH_MAIN_CHILD, one a line); it does nothing in a normal
// run.
func TestMainChild(t *testing.T) {
	args := os.Getenv(mainChildEnv)
	if args == "" {
		t.Skip("the child process of TestServeProcess and TestFlagErrorsExit2")
	}
	os.Args = append([]string{"sentibench"}, strings.Split(args, "\n")...)
	main()
	os.Exit(0)
}

// trainSmallRun trains a tiny cnn run on the sample and returns its directory.
func trainSmallRun(t *testing.T) string {
	t.Helper()
	cfg := train.DefaultConfig("cnn")
	cfg.Data, cfg.Limit, cfg.Epochs, cfg.BatchSize = "sample", 30, 1, 16
	cfg.VocabSize, cfg.EmbedDim, cfg.Filters, cfg.Threads = 1000, 8, 4, 1
	cfg.RunDir = filepath.Join(t.TempDir(), "cnn")
	if _, err := train.Run(context.Background(), cfg, train.Hooks{Log: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	return cfg.RunDir
}

// TestServeDamagedRun: `sentibench serve` on a run whose weights are damaged fails with an
// error naming them, and nothing listened first (no "listening" line before the error).
func TestServeDamagedRun(t *testing.T) {
	runDir := trainSmallRun(t)
	weights := filepath.Join(runDir, train.BestDir, "model.safetensors")
	b, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, b[:len(b)/2], 0o644); err != nil { // a torn copy
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the server to be given
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	stderr, code := runMain(t, "serve", "--run", runDir, "--addr", addr, "--threads", "1")
	if code != 1 || !strings.Contains(stderr, "model.safetensors") {
		t.Errorf("exit code %d, stderr %q; want 1 and an error naming the weights", code, stderr)
	}
	if strings.Contains(stderr, "listening") {
		t.Errorf("the server listened before it failed:\n%s", stderr)
	}
}

// TestServeProcess runs `sentibench serve` as a process on a trained run, waits for /readyz,
// classifies a text, sends SIGTERM, and requires a graceful exit with status 0.
func TestServeProcess(t *testing.T) {
	cfg := train.Config{RunDir: trainSmallRun(t)}

	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainChild$")
	cmd.Env = append(os.Environ(), mainChildEnv+"="+strings.Join([]string{"serve", "--run", cfg.RunDir, "--addr", "127.0.0.1:0", "--threads", "1"}, "\n"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // in case the test fails before the SIGTERM
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	base := ""
	timeout := time.After(30 * time.Second)
	for base == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, line)
			if _, u, ok := strings.Cut(line, "listening on "); ok {
				base = u
			}
		case <-timeout:
			t.Fatalf("the server did not listen in 30s:\n%s", strings.Join(log, "\n"))
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/v1/predict?text=A+fine+film")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"model":"cnn"`) {
		t.Errorf("predict: %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		log = append(log, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit status 0\n%s", err, strings.Join(log, "\n"))
	}
	if !strings.Contains(strings.Join(log, "\n"), "serve: stopped") {
		t.Errorf("no graceful stop in the log:\n%s", strings.Join(log, "\n"))
	}
}
