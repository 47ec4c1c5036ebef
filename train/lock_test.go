package train

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const lockChildEnv = "SENTIBENCH_LOCK_CHILD"

// holdLock is the child process of the lock tests: it locks the run directory, says "locked",
// and holds the lock until its stdin closes (or it is killed).
func holdLock(dir string) int {
	l, err := LockRun(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	l.Unlock()
	return 0
}

// lockInChild starts a child process that holds dir's lock, and returns it once it holds it.
func lockInChild(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("lock child: %q, %v", line, err)
	}
	return cmd, stdin
}

func wantLocked(t *testing.T, what string, err error, pid int) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	if !errors.Is(err, ErrRunLocked) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", pid)) {
		t.Fatalf("%s: got %v, want ErrRunLocked naming PID %d", what, err, pid)
	}
}

// TestRunLockAcrossProcesses: while another process holds a run directory's lock, a new run, a
// resume and a second lock there are refused with an error naming that process; after it ends
// (or is killed, leaving its PID in the lock file), the next run takes the lock and trains.
func TestRunLockAcrossProcesses(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}

	child, stdin := lockInChild(t, cfg.RunDir)
	_, err := Run(context.Background(), cfg, quietHooks())
	wantLocked(t, "new run", err, child.Process.Pid)
	if _, err := os.Stat(filepath.Join(cfg.RunDir, ConfigFile)); err == nil {
		t.Fatal("the refused run wrote config.json")
	}
	_, err = LockRun(cfg.RunDir)
	wantLocked(t, "second lock", err, child.Process.Pid)
	stdin.Close() // the child unlocks and ends
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatalf("after the holder ended: %v", err)
	}

	// A holder killed with SIGKILL leaves its PID behind; the lock is free all the same.
	child, _ = lockInChild(t, cfg.RunDir)
	_, err = Resume(context.Background(), cfg.RunDir, quietHooks())
	wantLocked(t, "resume", err, child.Process.Pid)
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	if b, _ := os.ReadFile(filepath.Join(cfg.RunDir, LockFile)); strings.TrimSpace(string(b)) != fmt.Sprint(child.Process.Pid) {
		t.Fatalf("the killed holder's lock file holds %q, want its PID %d", b, child.Process.Pid)
	}
	l, err := LockRun(cfg.RunDir)
	if err != nil {
		t.Fatalf("taking over the lock of a killed process: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.RunDir, LockFile)); strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Errorf("the lock file holds %q, want this process's PID %d", b, os.Getpid())
	}
	l.Unlock()
}

// TestTwoTrainersOneDirectory starts two trainers on one directory at the same moment (an
// flock belongs to an open file, so two in one process exclude each other as two processes
// do): one trains, the other is refused, and the run log holds each epoch once. A resume while
// the first trains is refused too.
func TestTwoTrainersOneDirectory(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	// The trainer that gets the lock waits after its first batch until the checks below are done.
	reached, checked := make(chan struct{}), make(chan struct{})
	var reachedOnce sync.Once // without the lock both would reach it
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hooks := quietHooks()
			hooks.Meter = &waitAfterFirst{reached: func() { reachedOnce.Do(func() { close(reached) }) }, wait: checked}
			<-start
			_, errs[i] = Run(context.Background(), cfg, hooks)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	close(start)
	select {
	case <-reached: // one trains: a resume now is refused
		_, err := Resume(context.Background(), cfg.RunDir, quietHooks())
		close(checked)
		<-done
		wantLocked(t, "resume of a run in training", err, os.Getpid())
	case <-done:
		t.Fatalf("neither trainer reached its first batch: %v", errs)
	}
	var failed, trained int
	for _, err := range errs {
		if err == nil {
			trained++
			continue
		}
		failed++
		wantLocked(t, "second trainer", err, os.Getpid())
	}
	if trained != 1 || failed != 1 {
		t.Fatalf("%d trained and %d failed, want one each: %v", trained, failed, errs)
	}
	if log := readResult(t, cfg.RunDir); len(log.Epochs) != cfg.Epochs {
		t.Errorf("the run log has %d epochs, want %d", len(log.Epochs), cfg.Epochs)
	}
}

// waitAfterFirst is a Meter that, after the first training batch, calls reached and blocks
// until wait is closed.
type waitAfterFirst struct {
	WallClock
	reached func() // called after the first batch
	wait    <-chan struct{}
	seen    bool
}

func (w *waitAfterFirst) AddWork(tokens int, flops float64) {
	w.WallClock.AddWork(tokens, flops)
	if !w.seen {
		w.seen = true
		w.reached()
		<-w.wait
	}
}
