package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// TestServeProcess runs `sentibench serve --log-format json --log-level debug` as a process on
// a trained run, waits for /readyz, classifies a text, sends SIGTERM, and requires a graceful
// exit with status 0, and a log of JSON records: start-up, the request with its ID, the stop.
// When promtool is installed, it checks the live server's /metrics.
func TestServeProcess(t *testing.T) {
	cfg := train.Config{RunDir: trainSmallRun(t)}

	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainChild$")
	cmd.Env = append(os.Environ(), mainChildEnv+"="+strings.Join([]string{"serve", "--run", cfg.RunDir, "--addr", "127.0.0.1:0", "--threads", "1",
		"--log-format", "json", "--log-level", "debug"}, "\n"))
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
			var rec struct{ Msg, URL string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q is not JSON: %v", line, err)
			}
			if rec.Msg == "listening" {
				base = rec.URL
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
	req, err := http.NewRequest("GET", base+"/v1/predict?text=A+fine+film", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-ID", "process-test-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"model":"cnn"`) || resp.Header.Get("X-Request-ID") != "process-test-1" {
		t.Errorf("predict: %d %s, X-Request-ID %q", resp.StatusCode, body, resp.Header.Get("X-Request-ID"))
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{"\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "\nsentibench_texts_total 1\n",
		"\nsentibench_model_info{model=\"cnn\"} 1\n"} {
		if !strings.Contains(string(metrics), series) {
			t.Errorf("no %q in /metrics:\n%s", series, metrics)
		}
	}
	promtoolCheck(t, string(metrics))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		log = append(log, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit status 0\n%s", err, strings.Join(log, "\n"))
	}
	// Every line a JSON record; the ones the operators look for, with their fields.
	want := map[string]func(map[string]any) bool{
		"run loaded": func(r map[string]any) bool {
			return r["model"] == "cnn" && r["run"] == cfg.RunDir && r["threads"] == 1.0 && r["blas"] != ""
		},
		"listening": func(r map[string]any) bool { return strings.HasPrefix(r["url"].(string), "http://127.0.0.1:") },
		"request": func(r map[string]any) bool {
			return r["request_id"] == "process-test-1" && r["level"] == "DEBUG" && r["path"] == "/v1/predict" && r["status"] == 200.0 && r["texts"] == 1.0
		},
		"stopped": func(r map[string]any) bool { return r["level"] == "INFO" },
	}
	found := map[string]bool{}
	for _, line := range log {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		if check, ok := want[msg]; ok && check(rec) {
			found[msg] = true
		}
	}
	for msg := range want {
		if !found[msg] {
			t.Errorf("no %q record as expected in the log:\n%s", msg, strings.Join(log, "\n"))
		}
	}
}

// promtoolCheck runs `promtool check metrics` on an exposition when promtool is installed
// (.ci/run installs it).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not installed: its check is skipped")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestServeLogFlags: an unknown log format or level is a usage error naming the flag.
func TestServeLogFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--run", "x", "--log-format", "yaml"}, "--log-format yaml: want text or json"},
		{[]string{"serve", "--run", "x", "--log-level", "loud"}, "--log-level loud: want debug, info, warn or error"},
	} {
		_, _, err := runCmd(c.args...)
		if err == nil || !isUsage(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a usage error %q", c.args, err, c.want)
		}
	}
}
