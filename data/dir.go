package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sentibench/sentibench/internal/progress"
)

// readDir reads a directory of text files: an unpacked aclImdb (the directory itself or its
// parent), DIR/{train,valid,test}/<label>/*.txt, or DIR/<label>/*.txt (no split given). Label
// folders are taken in byte-wise order of their names, files in byte-wise order of theirs; only
// *.txt files count. A folder named "unsup" under train/ holds unlabelled reviews.
func readDir(ctx context.Context, path string, wantUnsup bool, o Options) (*source, error) {
	root := imdbRoot(path)
	type spec struct {
		part, label, dir, prefix string
	}
	var specs []spec
	hasParts := false
	for _, part := range []string{"train", "valid", "test"} {
		d := filepath.Join(root, part)
		if !isDir(d) {
			continue
		}
		hasParts = true
		labels, err := subdirs(d)
		if err != nil {
			return nil, err
		}
		for _, l := range labels {
			if l == "unsup" {
				if part == "train" && wantUnsup {
					specs = append(specs, spec{"unsup", "", filepath.Join(d, l), "train/unsup/"})
				}
				continue
			}
			specs = append(specs, spec{part, l, filepath.Join(d, l), part + "/" + l + "/"})
		}
	}
	if !hasParts {
		labels, err := subdirs(root)
		if err != nil {
			return nil, err
		}
		for _, l := range labels {
			specs = append(specs, spec{"train", l, filepath.Join(root, l), l + "/"})
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: no label folders (expected DIR/<label>/*.txt, DIR/{train,valid,test}/<label>/*.txt, or an aclImdb directory)", path)
	}
	src := &source{name: path, format: "dir"}
	// The IMDB layout: exactly train/{neg,pos} and test/{neg,pos} (plus unsup).
	var labelled []string
	for _, s := range specs {
		if s.part != "unsup" {
			labelled = append(labelled, s.part+"/"+s.label)
		}
	}
	if slices.Equal(labelled, []string{"train/neg", "train/pos", "test/neg", "test/pos"}) {
		src.format, src.imdb = "imdb-dir", true
	}

	// List every folder, then read all files with a few workers.
	type job struct {
		folder int
		slot   int
		path   string
	}
	var jobs []job
	for fi, s := range specs {
		names, err := textFiles(s.dir)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no .txt files", s.dir)
		}
		items := make([]item, len(names))
		for k, n := range names {
			items[k] = item{name: s.prefix + n, rating: ratingOf(n)}
			jobs = append(jobs, job{fi, k, filepath.Join(s.dir, n)})
		}
		src.folders = append(src.folders, folder{part: s.part, label: s.label, items: items})
	}
	p := progress.New(o.Progress, progress.Options{Label: "read " + filepath.Base(path), Unit: "files", Total: int64(len(jobs)), Mode: o.ProgressMode})
	defer p.Done()
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				b, err := os.ReadFile(jobs[j].path)
				if err == nil {
					err = checkText(b)
				}
				if err != nil {
					errs[j] = fmt.Errorf("%s: %w", jobs[j].path, unwrapPathError(err))
					continue
				}
				src.folders[jobs[j].folder].items[jobs[j].slot].text = string(b)
				p.Add(1)
			}
		}()
	}
	for j := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return src, nil
}

// readTextFiles reads DIR/*.txt in byte-wise name order, naming each item prefix+file.
func readTextFiles(ctx context.Context, dir, prefix string, o Options) ([]item, error) {
	names, err := textFiles(dir)
	if err != nil {
		return nil, err
	}
	items := make([]item, 0, len(names))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if err == nil {
			err = checkText(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
		}
		items = append(items, item{name: prefix + n, text: string(b), rating: ratingOf(n)})
	}
	return items, nil
}

// subdirs lists the directories in dir, in byte-wise order.
func subdirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, unwrapPathError(err))
	}
	var out []string
	for _, e := range ents {
		isLinkedDir := e.Type()&os.ModeSymlink != 0 && isDir(filepath.Join(dir, e.Name()))
		if (e.IsDir() || isLinkedDir) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// textFiles lists the *.txt files in dir, in byte-wise order.
func textFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, unwrapPathError(err))
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".txt") && len(e.Name()) > len(".txt") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}
