// Command mksample writes data/sample/imdb_sample.tar.gz, the small sample of real IMDB reviews
// that sentibench embeds (`--data sample`), from the labelled archive.
//
// The sample holds 750 reviews of each of the four folders (train/neg, train/pos, test/neg,
// test/pos): exactly the reviews that `--limit 750` with seed 1234 keeps (the recipe's
// SplitMix64 sample, as torch_ref.py draws it), in the official aclImdb layout, plus the
// dataset's README and a note. The output is byte-for-byte reproducible for a given Go
// version: sorted names, fixed times and owners, gzip without a name or time.
//
//	go run ./scripts/mksample -in ../shared/data/imdb/aclImdb_v1_labelled.tar.gz
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/atomicfile"
)

const perFolder = 750

func main() {
	in := flag.String("in", "../shared/data/imdb/aclImdb_v1_labelled.tar.gz", "the labelled IMDB archive")
	out := flag.String("out", "data/sample/imdb_sample.tar.gz", "where to write the sample")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mksample:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	c, err := data.Load(context.Background(), data.Options{Path: in, Limit: perFolder, Seed: data.DefaultSeed})
	if err != nil {
		return err
	}
	readme, err := officialReadme(in)
	if err != nil {
		return err
	}
	note := fmt.Sprintf(`sentibench sample of the IMDB Large Movie Review Dataset (aclImdb v1.0)

%d reviews of each folder (train/neg, train/pos, test/neg, test/pos), %d in all, taken byte
for byte from the labelled archive: the reviews that sentibench (and torch_ref.py) keep with
--limit %d --seed %d. Made by scripts/mksample in the sentibench repository. The dataset's
own README follows in README; cite Maas et al. (2011) when you use the data.
`, perFolder, len(c.Examples), perFolder, data.DefaultSeed)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Date(2011, 6, 26, 0, 0, 0, 0, time.UTC)
	add := func(name, body string) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := io.WriteString(tw, body)
		return err
	}
	if err := add("aclImdb/README", readme); err != nil {
		return err
	}
	if err := add("aclImdb/SAMPLE.txt", note); err != nil {
		return err
	}
	// Examples are in canonical order: train/neg, train/pos, test/neg, test/pos, each by name,
	// which is also the sorted order of the member names within a folder.
	for _, e := range c.Examples {
		if err := add("aclImdb/"+e.Name, e.Text); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Printf("%s: %d reviews, %d bytes\n", out, len(c.Examples), buf.Len())
	return nil
}

// officialReadme returns aclImdb/README from the archive.
func officialReadme(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("%s: no aclImdb/README: %v", path, err)
		}
		if strings.HasSuffix(h.Name, "aclImdb/README") {
			b, err := io.ReadAll(tr)
			return string(b), err
		}
	}
}
