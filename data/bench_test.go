package data

import (
	"context"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// BenchmarkReadTokenizeVocab times the whole word pipeline over the real archive: stream and
// decompress the 50,000 labelled reviews, split, tokenize all of them with basic_english, build
// the vocabulary from the train part and map every review to ids (the target is under 5 s on
// a 2-core machine). Reported: seconds per run and reviews per second.
func BenchmarkReadTokenizeVocab(b *testing.B) {
	archive := testutil.Shared(b, "data/imdb/aclImdb_v1_labelled.tar.gz")
	ctx := context.Background()
	var n int
	for b.Loop() {
		c, err := Load(ctx, Options{Path: archive, Seed: DefaultSeed})
		if err != nil {
			b.Fatal(err)
		}
		v, ids, err := WordData(ctx, c, BasicEnglish{}, DefaultMaxWords, 0)
		if err != nil {
			b.Fatal(err)
		}
		if v.Len() != 25002 || len(ids) != 50000 {
			b.Fatalf("vocabulary %d, %d reviews", v.Len(), len(ids))
		}
		n = len(ids)
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/op")
	b.ReportMetric(float64(n)/sec, "reviews/s")
}

// BenchmarkRead times reading alone (gzip + tar + UTF-8 checks), the sequential part.
func BenchmarkRead(b *testing.B) {
	archive := testutil.Shared(b, "data/imdb/aclImdb_v1_labelled.tar.gz")
	for b.Loop() {
		if _, err := Load(context.Background(), Options{Path: archive, Seed: DefaultSeed}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
}

// BenchmarkSampleLoad times loading the embedded sample (3,000 reviews).
func BenchmarkSampleLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
}

// BenchmarkTokenizeAll times tokenizing and interning the embedded sample (3,000 reviews) on
// one goroutine: the per-core speed of the parallel step.
func BenchmarkTokenizeAll(b *testing.B) {
	c, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed})
	if err != nil {
		b.Fatal(err)
	}
	texts := c.Texts()
	var n int64
	for _, t := range texts {
		n += int64(len(t))
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, err := TokenizeAll(context.Background(), texts, BasicEnglish{}, 1); err != nil {
			b.Fatal(err)
		}
	}
}
