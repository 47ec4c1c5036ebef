package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointDirSwap(t *testing.T) {
	dir := t.TempDir()
	if _, err := openCheckpointDir(dir, "last"); !errors.Is(err, errNoCheckpoint) {
		t.Fatalf("empty run dir: %v", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := writeCheckpointDir(dir, "last", map[string][]byte{"a": []byte(v), "b": []byte(v + "b")}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := openCheckpointDir(dir, "last")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "b")); string(b) != "twob" {
		t.Fatalf("read %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// A swap cut short after last -> last.old: the old one is found, and the next write works.
	os.Rename(filepath.Join(dir, "last"), filepath.Join(dir, "last.old"))
	os.MkdirAll(filepath.Join(dir, "last.new"), 0o755)
	os.WriteFile(filepath.Join(dir, "last.new", "a"), []byte("half"), 0o644)
	p, err = openCheckpointDir(dir, "last")
	if err != nil || filepath.Base(p) != "last.old" {
		t.Fatalf("recovery found %q, %v", p, err)
	}
	if err := writeCheckpointDir(dir, "last", map[string][]byte{"a": []byte("three")}); err != nil {
		t.Fatal(err)
	}
	p, _ = openCheckpointDir(dir, "last")
	if b, _ := os.ReadFile(filepath.Join(p, "a")); string(b) != "three" || filepath.Base(p) != "last" {
		t.Fatalf("after recovery: %s %q", p, b)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestCheckpointDirFailedWrite: a checkpoint whose files cannot be written (here a name the
// file system refuses, as a full disk refuses the data) is an error, leaves the previous
// checkpoint as it was, and leaves no NAME.new behind (it used to leave it, empty or half).
func TestCheckpointDirFailedWrite(t *testing.T) {
	dir := t.TempDir()
	if err := writeCheckpointDir(dir, "last", map[string][]byte{"a": []byte("one")}); err != nil {
		t.Fatal(err)
	}
	tooLong := strings.Repeat("x", 300) // over NAME_MAX: the write fails
	err := writeCheckpointDir(dir, "last", map[string][]byte{"a": []byte("two"), tooLong: []byte("two")})
	if err == nil {
		t.Fatal("writing a file the file system refuses succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "last.new")); !os.IsNotExist(err) {
		t.Errorf("last.new is left behind (stat: %v)", err)
	}
	p, err := openCheckpointDir(dir, "last")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "a")); string(b) != "one" {
		t.Errorf("the previous checkpoint reads %q, want one", b)
	}
}
