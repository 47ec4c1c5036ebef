// Command goinstall serves a module from a directory as a file-based Go module proxy, so that
// `go install MODULE/cmd/...@VERSION` can be tried on a module that is not published: it writes
// OUT/<module path>/@v/{list,VERSION.info,VERSION.mod,VERSION.zip}, the layout GOPROXY=file://OUT
// reads (https://go.dev/ref/mod#goproxy-protocol). The zip is made by golang.org/x/mod/zip from a
// git revision (committed files only, as a published tag would hold them), as the go command
// makes it.
//
// scripts/goinstall-check.sh runs it; it is a module of its own so that the main module does not
// depend on golang.org/x/mod.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	dir := flag.String("dir", ".", "the module's root directory (holds go.mod; the root of a git checkout)")
	rev := flag.String("rev", "HEAD", "the git revision to serve")
	version := flag.String("version", "", "the version to serve it as, e.g. v0.0.0-20261206000000-abcdef123456")
	out := flag.String("out", "", "the proxy directory to write")
	flag.Parse()
	if err := run(*dir, *rev, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "goinstall:", err)
		os.Exit(1)
	}
}

func run(dir, rev, version, out string) error {
	if out == "" || !semver.IsValid(version) {
		return fmt.Errorf("want -out DIR and a valid -version (got %q, %q)", out, version)
	}
	gomod, err := exec.Command("git", "-C", dir, "show", rev+":go.mod").Output()
	if err != nil {
		return fmt.Errorf("git show %s:go.mod in %s: %w", rev, dir, err)
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return fmt.Errorf("%s:go.mod in %s: no module path", rev, dir)
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	v := filepath.Join(out, escaped, "@v")
	if err := os.MkdirAll(v, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(v, version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromVCS(f, module.Version{Path: path, Version: version}, dir, rev, ""); err != nil {
		f.Close()
		return fmt.Errorf("zip of %s at %s: %w", dir, rev, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC()})
	if err != nil {
		return err
	}
	for name, body := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  gomod,
	} {
		if err := os.WriteFile(filepath.Join(v, name), body, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("serving %s@%s (%s of %s) from %s\n", path, version, rev, dir, out)
	return nil
}
