package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// splitTSV writes the split as torch_ref.py --dump-data does: "train\t<name>" for each train
// index in order, then valid, then test.
func splitTSV(c *Corpus) []byte {
	var b bytes.Buffer
	for _, part := range []struct {
		name string
		idx  []int
	}{{"train", c.Train}, {"valid", c.Valid}, {"test", c.Test}} {
		for _, i := range part.idx {
			fmt.Fprintf(&b, "%s\t%s\n", part.name, c.Examples[i].Name)
		}
	}
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// realIMDBOnce caches the labelled archive as read, for the tests that apply different
// options to it (assemble does not modify a source).
var realIMDBOnce struct {
	sync.Once
	src *source
	err error
}

// realIMDB reads the labelled archive once per test binary.
func realIMDB(t *testing.T, archive string) *source {
	t.Helper()
	realIMDBOnce.Do(func() {
		realIMDBOnce.src, realIMDBOnce.err = readSource(context.Background(), Options{Path: archive})
	})
	if realIMDBOnce.err != nil {
		t.Fatal(realIMDBOnce.err)
	}
	return realIMDBOnce.src
}

// parityHashes reads data/testdata/torch_ref_parity.txt: "<limit> <file> <sha256>" lines.
func parityHashes(t *testing.T) map[string]string {
	b, err := os.ReadFile("testdata/torch_ref_parity.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && !strings.HasPrefix(line, "#") {
			out[f[0]+" "+f[1]] = f[2]
		}
	}
	return out
}

// TestParityWithTorchRef recomputes torch_ref.py's split.tsv and vocab.txt (--dump-data) from
// the real archive and compares their SHA-256 with those of the files torch_ref.py wrote
// (scripts/gen_parity_hashes.sh), for the whole data set and for --limit 300.
func TestParityWithTorchRef(t *testing.T) {
	archive := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	want := parityHashes(t)
	for _, limit := range []int{300, 0} {
		name := "all"
		if limit > 0 {
			name = fmt.Sprint(limit)
		}
		t.Run("limit="+name, func(t *testing.T) {
			if testing.Short() && limit == 0 {
				t.Skip("-short: the whole data set takes a few seconds")
			}
			c, err := assemble(realIMDB(t, archive), Options{Limit: limit, Seed: DefaultSeed})
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := WordData(context.Background(), c, BasicEnglish{}, DefaultMaxWords, 0)
			if err != nil {
				t.Fatal(err)
			}
			var vb bytes.Buffer
			v.WriteTo(&vb)
			got := map[string]string{"split.tsv": sha(splitTSV(c)), "vocab.txt": sha(vb.Bytes())}
			for file, g := range got {
				w, ok := want[name+" "+file]
				if !ok {
					t.Fatalf("no reference hash for %s %s", name, file)
				}
				if g != w {
					t.Errorf("%s: SHA-256 %s, torch_ref.py's is %s", file, g, w)
				}
			}
			if limit == 0 && (len(c.Train) != 17500 || len(c.Valid) != 7500 || len(c.Test) != 25000 || v.Len() != 25002) {
				t.Errorf("sizes %d/%d/%d, vocabulary %d", len(c.Train), len(c.Valid), len(c.Test), v.Len())
			}
		})
	}
}
