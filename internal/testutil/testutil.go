// Package testutil holds what the project's tests share: where the ../shared fixtures are.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RequireSharedEnv is the environment variable that makes a missing ../shared fixture a test
// failure instead of a skip. .ci/run sets it: CI always has ../shared beside the checkout.
const RequireSharedEnv = "SENTIBENCH_REQUIRE_SHARED"

// Shared returns the path of rel inside the shared folder that sits beside the checkout
// (../shared from the module root), or $SENTIBENCH_SHARED when set. When the file is missing
// the test is skipped with a message, or fails when $SENTIBENCH_REQUIRE_SHARED=1.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	dir := os.Getenv("SENTIBENCH_SHARED")
	if dir == "" {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "..", "shared")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv(RequireSharedEnv) == "1" {
			t.Fatalf("shared fixture missing: %v", err)
		}
		t.Skipf("shared fixture missing (set %s=1 to fail instead): %v", RequireSharedEnv, err)
	}
	return p
}

// ModuleRoot finds the directory holding go.mod, walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
