package distill

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/train"
)

// TestAugment checks Tang et al.'s augmentation on the sample's train reviews: deterministic
// from the seed, masking at about the asked rate with tokens the vocabulary reads as <unk>,
// n-grams no longer than asked, and texts the tokenizer splits back into the same tokens.
func TestAugment(t *testing.T) {
	c, err := data.Load(context.Background(), data.Options{Path: "sample", Limit: 100, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	a := Augment{Copies: 3, MaskProb: 0.2, NgramProb: 0.5, NgramMax: 30}
	got, err := augmentTexts(context.Background(), c, a, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*len(c.Train) {
		t.Fatalf("%d copies of %d reviews, want 3 each", len(got), len(c.Train))
	}
	again, _ := augmentTexts(context.Background(), c, a, 7)
	if !slices.Equal(got, again) {
		t.Error("the same seed gave other copies")
	}
	other, _ := augmentTexts(context.Background(), c, a, 8)
	same := 0
	for i := range got {
		if got[i] == other[i] {
			same++
		}
	}
	if same > len(got)/20 {
		t.Errorf("another seed left %d of %d copies the same", same, len(got))
	}
	tok := data.BasicEnglish{}
	vocab, err := data.NewVocab([]string{data.UnkToken, data.PadToken, "film"})
	if err != nil {
		t.Fatal(err)
	}
	masked, total, short := 0, 0, 0
	for i, text := range got {
		orig := tok.Tokenize(c.Examples[c.Train[i/3]].Text)
		toks := tok.Tokenize(text)
		if strings.Join(toks, " ") != text {
			t.Fatalf("copy %d does not tokenize back into itself", i)
		}
		if len(toks) < len(orig) {
			short++
			if len(toks) > a.NgramMax {
				t.Errorf("copy %d is an n-gram of %d tokens, longer than %d", i, len(toks), a.NgramMax)
			}
		}
		if len(toks) == len(orig) {
			for j, w := range toks {
				if w == data.UnkToken {
					masked++
					if vocab.ID(w) != data.UNK {
						t.Fatal("<unk> is not read as the unknown word")
					}
				} else if w != orig[j] {
					t.Fatalf("copy %d: token %d is %q, want %q or <unk>", i, j, w, orig[j])
				}
			}
			total += len(toks)
		}
	}
	if rate := float64(masked) / float64(total); rate < 0.18 || rate > 0.22 {
		t.Errorf("masked %.3f of the tokens, want about 0.2", rate)
	}
	if frac := float64(short) / float64(len(got)); frac < 0.4 || frac > 0.6 {
		t.Errorf("%.2f of the copies are n-grams, want about 0.5", frac)
	}
}

// TestTransferSet builds a transfer set with unlabelled reviews (from an archive) and
// augmented copies: the dataset indices follow the labelled examples, and a seeded sample of
// the unlabelled reviews is the same for the same seed.
func TestTransferSet(t *testing.T) {
	cfg := DefaultConfig(teacherDir, "cnn")
	cfg.Student = smallConfig("cnn")
	cfg.Unsup = unsupArchive(t, 25)
	cfg.UnsupLimit = 10
	cfg.Augment.Copies = 2
	hooks := train.Hooks{Log: io.Discard, Progress: io.Discard}
	ts, err := buildTransfer(context.Background(), cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if ts.n != 240 || ts.train != 84 || ts.unsup != 10 || ts.augmented != 168 || len(ts.extra) != 178 || len(ts.index) != 84+178 {
		t.Fatalf("transfer set: n %d, %d train, %d unsup, %d augmented, %d extra, %d in all", ts.n, ts.train, ts.unsup, ts.augmented, len(ts.extra), len(ts.index))
	}
	for k, i := range ts.index[84:] {
		if i != 240+k || ts.texts[84+k] != ts.extra[k] {
			t.Fatalf("extra %d has dataset index %d, want %d", k, i, 240+k)
		}
	}
	again, err := buildTransfer(context.Background(), cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts.texts, again.texts) || !slices.Equal(ts.index, again.index) {
		t.Error("the same configuration built another transfer set")
	}
	cfg.Student.Seed++
	other, err := buildTransfer(context.Background(), cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(ts.extra[:10], other.extra[:10]) {
		t.Error("another seed drew the same unlabelled reviews")
	}
}
