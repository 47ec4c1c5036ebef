package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the lock file's name inside a run directory. It holds the process ID of the
// process that trains in the directory; the lock itself is an flock on the file, which the
// kernel releases when that process ends, however it ends. A lock file left by a process that
// died is therefore no obstacle: the next process takes the lock over and writes its own ID.
const LockFile = "lock"

// ErrRunLocked is returned (wrapped) when another process holds a run directory's lock.
var ErrRunLocked = errors.New("the run directory is in use")

// RunLock is the exclusive lock of a run directory, held by the one process that writes it
// (train, distill, bench, and their --resume) for the run's whole life. Readers (eval,
// predict, serve, report) take no lock: every file a run writes is replaced atomically.
type RunLock struct {
	dir  string
	f    *os.File
	made bool // CreateRun made the directory
}

// LockRun takes the exclusive lock of the run directory dir (which must exist). When another
// process holds it, the error wraps ErrRunLocked and names that process's ID.
func LockRun(dir string) (*RunLock, error) {
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: locking the run directory: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("train: locking %s: %w", p, err)
	}
	if !held {
		holder := readHolder(f)
		f.Close()
		return nil, fmt.Errorf("train: %s: %w by process %s (lock %s); wait for it to end, or stop it",
			dir, ErrRunLocked, holder, p)
	}
	// The lock is ours: record who holds it, for the message of the next process that tries.
	line := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err = f.WriteAt(line, 0); err == nil {
		err = f.Truncate(int64(len(line))) // the end of a longer PID left by a killed holder
	}
	if err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("train: writing %s: %w", p, err)
	}
	return &RunLock{dir: dir, f: f}, nil
}

// Dir is the locked run directory.
func (l *RunLock) Dir() string { return l.dir }

// Unlock releases the lock; the lock file stays, emptied of the process ID. Unlocking a nil
// lock does nothing.
func (l *RunLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0) // no holder any more
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// readHolder reads the holder's process ID from the lock file. A holder writes it right after
// taking the lock, so an empty file is read again for a short while before the ID is called
// unknown.
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	for try := 0; try < 50; try++ {
		n, _ := f.ReadAt(b, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
			return "PID " + strconv.Itoa(pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "(PID unknown)"
}

// CreateRun makes the directory of a new run (or takes an existing one that holds no run yet)
// and locks it. It refuses a directory that holds a run already (a config.json). The check comes
// after the lock, so that of two processes started together on one directory, one trains and
// the other is refused.
func CreateRun(dir string) (*RunLock, error) {
	if dir == "" {
		return nil, fmt.Errorf("train: no run directory given")
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	l, err := LockRun(dir)
	if err != nil {
		return nil, err
	}
	l.made = statErr != nil
	if err := checkNewRun(dir); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// checkNewRun refuses a directory that holds a run already.
func checkNewRun(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		return fmt.Errorf("train: %s already holds a run (resume it, or choose another directory)", dir)
	}
	return nil
}

// abandon releases the lock of a run whose setup failed and, when CreateRun made the directory,
// removes it with whatever the setup wrote there (config.json, vocab.txt, the run log, tb/):
// nothing else can be in a directory this process made and held locked.
func (l *RunLock) abandon() {
	l.Unlock()
	if l.made {
		os.RemoveAll(l.dir)
	}
}

// holds checks that the lock is the one of dir.
func (l *RunLock) holds(dir string) error {
	if l.f == nil || filepath.Clean(l.dir) != filepath.Clean(dir) {
		return fmt.Errorf("train: the lock given is not held on %s (it is %s's)", dir, l.dir)
	}
	return nil
}
