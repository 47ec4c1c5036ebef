package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestResumeFinishedRun: resuming a finished run changes nothing (it used to test again and
// replace the final record); --retest (Options.Retest) tests again, and keeps the recorded
// test when the new one fails (it used to delete the final line).
func TestResumeFinishedRun(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(cfg.RunDir, RunLogFile)
	recorded, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(logPath); !bytes.Equal(b, recorded) {
			t.Fatalf("%s changed the run log:\n%s\nwas:\n%s", what, b, recorded)
		}
	}

	got, err := Resume(context.Background(), cfg.RunDir, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	unchanged("resume of a finished run")
	if got.Final.TestAcc != want.Final.TestAcc || got.Final.TotalSeconds != want.Final.TotalSeconds || len(got.Epochs) != len(want.Epochs) {
		t.Errorf("resume of a finished run returned %+v, want the recorded %+v", got.Final, want.Final)
	}

	// A retest over a damaged best checkpoint fails and keeps the recorded test.
	weights := filepath.Join(cfg.RunDir, BestDir, WeightsFile)
	good, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResumeWith(context.Background(), cfg.RunDir, quietHooks(), Options{Resume: ResumeOptions{Retest: true}}); err == nil {
		t.Fatal("a retest over a damaged best checkpoint succeeded")
	}
	unchanged("a failed retest")

	// A retest of the intact run gives the same figures and replaces the final record only.
	if err := os.WriteFile(weights, good, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := ResumeWith(context.Background(), cfg.RunDir, quietHooks(), Options{Resume: ResumeOptions{Retest: true}})
	if err != nil {
		t.Fatal(err)
	}
	sameFigures(t, want, again)
	rl, err := ReadRunLog(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if !rl.Finished || len(rl.Epochs) != cfg.Epochs || rl.Final.TestAcc != want.Final.TestAcc {
		t.Errorf("after the retest the log has %d epochs, finished %v, test acc %v", len(rl.Epochs), rl.Finished, rl.Final.TestAcc)
	}
	if rl.Final.TotalSeconds < want.Final.TotalSeconds {
		t.Errorf("the retest's total_seconds %v is less than the recorded %v", rl.Final.TotalSeconds, want.Final.TotalSeconds)
	}
}

// TestResumeCountsAllTime: total_seconds of a resumed run counts the earlier processes' time
// (the checkpoint carries it); it used to count the last process's only.
func TestResumeCountsAllTime(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: 3, cancel: cancel}
	_, err := Run(ctx, cfg, hooks)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	p := filepath.Join(cfg.RunDir, LastDir, StateFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if s, _ := st["seconds"].(float64); !(s > 0) {
		t.Fatalf("the checkpoint records %v seconds, want the first process's time", st["seconds"])
	}
	// Say the first process took an hour: the total must include it.
	st["seconds"] = 3600.0
	b, _ = json.Marshal(st)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Resume(context.Background(), cfg.RunDir, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	if res.Final.TotalSeconds < 3600 {
		t.Errorf("total_seconds %v leaves out the first process's 3600 s", res.Final.TotalSeconds)
	}
}

// TestResumeOldStateWithoutSeconds: a checkpoint written before the state had "seconds"
// resumes (as 0 seconds before it).
func TestResumeOldStateWithoutSeconds(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: 3, cancel: cancel}
	if _, err := Run(ctx, cfg, hooks); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	cancel()
	p := filepath.Join(cfg.RunDir, LastDir, StateFile)
	b, _ := os.ReadFile(p)
	var st map[string]any
	json.Unmarshal(b, &st)
	delete(st, "seconds")
	b, _ = json.Marshal(st)
	os.WriteFile(p, b, 0o644)
	if _, err := Resume(context.Background(), cfg.RunDir, quietHooks()); err != nil {
		t.Fatal(err)
	}
}
