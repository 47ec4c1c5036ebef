//go:build sentibench_mpi

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/train"
)

// mainEnv makes the test binary run sentibench's main on its arguments: the process that
// mpirun starts twice.
const mainEnv = "SENTIBENCH_TEST_MAIN"

func init() {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// sampleArgs train the cnn on the sample, briefly, on one thread per rank.
var sampleArgs = []string{"train", "--model", "cnn", "--data", "sample", "--limit", "200", "--progress", "quiet", "--threads", "1"}

// findMpirun returns mpirun's path, or skips the test.
func findMpirun(t *testing.T) string {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("no mpirun (apt-get install openmpi-bin libopenmpi-dev)")
	}
	return mpirun
}

// sentibench returns the command that runs this test binary as sentibench: under mpirun with
// the ranks' arguments (one list per group of ranks, as mpirun's "-np N ARGS : -np M ARGS"),
// or as one process when mpirun is "". mpirun may run as root, as in CI's containers.
func sentibench(mpirun string, ranks ...[]string) *exec.Cmd {
	var argv []string
	for i, args := range ranks {
		if mpirun != "" {
			if i == 0 {
				argv = append(argv, mpirun, "--oversubscribe")
			} else {
				argv = append(argv, ":")
			}
			argv = append(argv, "-np", args[0])
			args = args[1:]
		}
		argv = append(append(argv, os.Args[0]), args...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	return cmd
}

// runLog runs cmd to its end, which must succeed, and returns the run log of dir and cmd's
// output.
func runLog(t *testing.T, cmd *exec.Cmd, dir string) (train.RunLog, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	t.Logf("%v:\n%s", cmd.Args, out)
	if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	rl, err := train.ReadRunLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rl, string(out)
}

// TestMPIRunMatchesOneRank runs `sentibench train` (this MPI build) under a real
// `mpirun -np 2` on the sample, dropout 0, and requires the figures of the same run as one
// process within float32 summation error (1e-5 relative on the losses; the same accuracies).
func TestMPIRunMatchesOneRank(t *testing.T) {
	mpirun := findMpirun(t)
	args := append(sampleArgs, "--epochs", "1", "--dropout", "0")
	base := t.TempDir()
	one, two := filepath.Join(base, "one"), filepath.Join(base, "two")
	want, _ := runLog(t, sentibench("", append(args, "--run", one)), one)
	got, out := runLog(t, sentibench(mpirun, append([]string{"2"}, append(args, "--run", two)...)), two)
	if !strings.Contains(out, "Data-parallel: 2 ranks") || strings.Count(out, "Epoch: 01") != 1 {
		t.Errorf("mpirun -np 2: want one report, of 2 ranks")
	}
	if !got.Finished || len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("2 ranks: %d epochs (finished %v), want %d", len(got.Epochs), got.Finished, len(want.Epochs))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !near(w.TrainLoss, g.TrainLoss) || !near(w.ValidLoss, g.ValidLoss) || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc || w.Tokens != g.Tokens {
			t.Errorf("epoch %d: 2 ranks train %v/%v valid %v/%v tokens %d, 1 rank %v/%v %v/%v %d", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, g.Tokens, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc, w.Tokens)
		}
	}
	if !near(want.Final.TestLoss, got.Final.TestLoss) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test: 2 ranks %v/%v, 1 rank %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
}

// TestMPIKillAndResume: kill -9 of rank 1 in the middle of a 2-rank run's second epoch stops
// the job (mpirun exits non-zero within seconds, naming the rank), and `--resume` under
// `mpirun -np 2` ends with the figures of the 2-rank run left alone, bit for bit (dropout on:
// every rank's generator is in the checkpoint).
func TestMPIKillAndResume(t *testing.T) {
	mpirun := findMpirun(t)
	args := append(sampleArgs, "--epochs", "3", "--dropout", "0.3")
	base := t.TempDir()
	alone, killed := filepath.Join(base, "alone"), filepath.Join(base, "killed")
	want, _ := runLog(t, sentibench(mpirun, append([]string{"2"}, append(args, "--run", alone)...)), alone)

	cmd := sentibench(mpirun, append([]string{"2"}, append(args, "--run", killed)...))
	var out bytes.Buffer
	cmd.Stderr = &out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// After epoch 1's line, wait for about half of an epoch's training, then kill rank 1.
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "Epoch: 01") {
		out.WriteString(lines.Text() + "\n")
	}
	rl, err := train.ReadRunLog(killed)
	if err != nil || len(rl.Epochs) != 1 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no epoch 1 in the run log (%v):\n%s", err, out.String())
	}
	time.Sleep(time.Duration(rl.Epochs[0].TrainSeconds / 2 * float64(time.Second)))
	rank1, err := rankPID(cmd.Process.Pid, 1)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	if err := syscall.Kill(rank1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	go func() {
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("mpirun still runs a minute after rank 1 was killed:\n%s", out.String())
	}
	stopped := time.Since(killedAt)
	t.Logf("mpirun exited %v %.1f s after rank 1 (pid %d) was killed:\n%s", err, stopped.Seconds(), rank1, out.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("mpirun: %v, want a non-zero exit", err)
	}
	if !strings.Contains(out.String(), "rank 1") {
		t.Errorf("mpirun's output does not name rank 1:\n%s", out.String())
	}
	if rl, err := train.ReadRunLog(killed); err != nil || rl.Finished {
		t.Fatalf("the killed run finished (or has no log: %v)", err)
	}

	got, out2 := runLog(t, sentibench(mpirun, []string{"2", "train", "--resume", killed, "--progress", "quiet", "--threads", "1"}), killed)
	if strings.Contains(out2, "Note: resuming") {
		t.Errorf("the resume on as many ranks says the masks differ:\n%s", out2)
	}
	if len(got.Epochs) != len(want.Epochs) || !got.Finished {
		t.Fatalf("resumed: %d epochs (finished %v), want %d", len(got.Epochs), got.Finished, len(want.Epochs))
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if w.TrainLoss != g.TrainLoss || w.ValidLoss != g.ValidLoss || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc || w.Tokens != g.Tokens {
			t.Errorf("epoch %d: resumed train %v/%v valid %v/%v, left alone %v/%v %v/%v", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
		}
	}
	if w, g := want.Final, got.Final; w.TestLoss != g.TestLoss || w.TestAcc != g.TestAcc || w.BestEpoch != g.BestEpoch {
		t.Errorf("test: resumed %v/%v (epoch %d), left alone %v/%v (%d)", g.TestLoss, g.TestAcc, g.BestEpoch, w.TestLoss, w.TestAcc, w.BestEpoch)
	}
}

// rankPID finds the process of a rank among mpirun's children (OpenMPI starts the ranks of its
// own machine itself and gives each its rank in OMPI_COMM_WORLD_RANK).
func rankPID(mpirun, rank int) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(mpirun) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == fmt.Sprintf("OMPI_COMM_WORLD_RANK=%d", rank) {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process of rank %d among mpirun's (pid %d) children", rank, mpirun)
}

// TestMPIRanksMustAgree: under a real mpirun, a rank given other flags, or another data file,
// stops the job at start: a non-zero exit, one error naming the rank and the difference, and
// no run directory, neither rank 0's nor the other rank's. So does a batch size below the
// number of ranks (a usage error, exit 2).
func TestMPIRanksMustAgree(t *testing.T) {
	mpirun := findMpirun(t)
	other := filepath.Join(t.TempDir(), "other.csv")
	var csv strings.Builder
	csv.WriteString("text,label\n")
	for i := range 40 {
		fmt.Fprintf(&csv, "review %d is %s,%s\n", i, []string{"good", "bad"}[i%2], []string{"pos", "neg"}[i%2])
	}
	if err := os.WriteFile(other, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(sampleArgs, "--epochs", "1")
	for _, tc := range []struct {
		name        string
		rank1       []string // rank 1's flags, after the common ones
		code        int
		want        []string
		ranksFlags0 []string
	}{
		{"other flags", []string{"--epochs", "2", "--seed", "7"}, 1, []string{"rank 1's epochs: 2 (rank 0's: 1)", "rank 1's seed: 7 (rank 0's: 1234)"}, nil},
		{"another data file", []string{"--data", other}, 1, []string{"rank 1's data checksum: ", "(" + other + ") (rank 0's: ", "(sample))"}, nil},
		{"batch smaller than ranks", []string{"--batch-size", "1"}, 2, []string{"--batch-size 1: 2 ranks share each batch, so rank 1 would get none of a batch of 1 review"}, []string{"--batch-size", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir0, dir1 := filepath.Join(base, "rank0"), filepath.Join(base, "rank1")
			rank0 := append(append([]string{"1"}, args...), append(tc.ranksFlags0, "--run", dir0)...)
			rank1 := append(append([]string{"1"}, args...), append(tc.rank1, "--run", dir1)...)
			cmd := sentibench(mpirun, rank0, rank1)
			out, err := cmd.CombinedOutput()
			t.Logf("%v: %v\n%s", cmd.Args, err, out)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("mpirun: %v, want exit status %d", err, tc.code)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("the output does not say %q", want)
				}
			}
			if n := strings.Count(string(out), "sentibench: "); n != 1 {
				t.Errorf("%d errors printed, want one (rank 0's)", n)
			}
			for _, dir := range []string{dir0, dir1} {
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists (stat: %v)", dir, err)
				}
			}
		})
	}
}

// TestMPIDistill distils a cnn teacher into a cnn student under a real `mpirun -np 2` and as
// one process, dropout 0: the student's figures agree within float32 summation error, and one
// report is printed.
func TestMPIDistill(t *testing.T) {
	mpirun := findMpirun(t)
	base := t.TempDir()
	teacher := filepath.Join(base, "teacher")
	runLog(t, sentibench("", append(sampleArgs, "--epochs", "1", "--run", teacher)), teacher)
	args := []string{"distill", "--teacher", teacher, "--student", "cnn", "--filters", "20", "--epochs", "2", "--dropout", "0",
		"--throughput-reviews", "0", "--progress", "quiet", "--threads", "1"}
	one, two := filepath.Join(base, "one"), filepath.Join(base, "two")
	want, _ := runLog(t, sentibench("", append(args, "--run", one)), one)
	got, out := runLog(t, sentibench(mpirun, append([]string{"2"}, append(args, "--run", two)...)), two)
	if strings.Count(out, "Report written to") != 1 || !strings.Contains(out, "Data-parallel: 2 ranks") {
		t.Errorf("mpirun -np 2: want one report, of 2 ranks")
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	if len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("2 ranks: %d epochs, want %d", len(got.Epochs), len(want.Epochs))
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !near(w.TrainLoss, g.TrainLoss) || !near(w.ValidLoss, g.ValidLoss) || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc {
			t.Errorf("epoch %d: 2 ranks train %v/%v valid %v/%v, 1 rank %v/%v %v/%v", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
		}
	}
	if !near(want.Final.TestLoss, got.Final.TestLoss) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test: 2 ranks %v/%v, 1 rank %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
}

// TestMPIBiGRU trains the bigru head over the shared tiny random BERT under a real
// `mpirun -np 2` and as one process, dropout 0, each from a feature cache not built yet (the
// two ranks share theirs: rank 0 builds it, rank 1 reads it): the figures agree within float32
// summation error.
func TestMPIBiGRU(t *testing.T) {
	mpirun := findMpirun(t)
	enc := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	base := t.TempDir()
	args := []string{"train", "--model", "bigru", "--encoder", enc, "--data", "sample", "--limit", "30", "--epochs", "1",
		"--dropout", "0", "--batch-size", "16", "--progress", "quiet", "--threads", "1"}
	one, two := filepath.Join(base, "one"), filepath.Join(base, "two")
	want, _ := runLog(t, sentibench("", append(args, "--run", one, "--feature-cache", filepath.Join(base, "cache-one"))), one)
	got, out := runLog(t, sentibench(mpirun, append([]string{"2"}, append(args, "--run", two, "--feature-cache", filepath.Join(base, "cache-two"))...)), two)
	if !strings.Contains(out, "Data-parallel: 2 ranks") {
		t.Errorf("mpirun -np 2: not a run of 2 ranks")
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(math.Abs(a), math.Abs(b)) }
	if len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("2 ranks: %d epochs, want %d", len(got.Epochs), len(want.Epochs))
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if !near(w.TrainLoss, g.TrainLoss) || !near(w.ValidLoss, g.ValidLoss) || w.TrainAcc != g.TrainAcc || w.ValidAcc != g.ValidAcc {
			t.Errorf("epoch %d: 2 ranks train %v/%v valid %v/%v, 1 rank %v/%v %v/%v", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
		}
	}
	if !near(want.Final.TestLoss, got.Final.TestLoss) || want.Final.TestAcc != got.Final.TestAcc {
		t.Errorf("test: 2 ranks %v/%v, 1 rank %v/%v", got.Final.TestLoss, got.Final.TestAcc, want.Final.TestLoss, want.Final.TestAcc)
	}
}
