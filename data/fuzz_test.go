package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets below hold the WordPiece tokenizer and the readers of tokenizer files to their
// contracts on arbitrary input: `go test` runs their seeds; `go test -fuzz FuzzWordPiece ./data`
// searches.

// FuzzWordPiece checks, for any text, that both loaders of the real bert-base-uncased vocabulary
// (tokenizer.json and vocab.txt) give the same word pieces, every id lies in the vocabulary, and
// Encode and EncodeHeadTail are the word pieces cut as documented, between [CLS] and [SEP].
func FuzzWordPiece(f *testing.F) {
	for _, s := range []string{
		"This movie was GREAT!!! 10/10, would watch again.",
		"Crème brûlée, naïve café; Ünïcödé",
		"中文字符 and 日本語 mixed with ＦＵＬＬＷＩＤＴＨ",
		"tabs\tand\nnewlines\r\nand\x00control\x7fchars\u200b",
		"[UNK] [CLS] [SEP] ##ing un##affable",
		strings.Repeat("a", 150) + " " + strings.Repeat("é", 120),
		"<br /><br />It's a 'so-called' \"classic\"...",
		"\xff\xfe invalid utf-8 \xc3",
	} {
		f.Add(s)
	}
	both := loadBoth(f)
	js, vt := both["tokenizer.json"], both["vocab.txt"]
	f.Fuzz(func(t *testing.T, text string) {
		full := js.Tokenize(text)
		if got := vt.Tokenize(text); !slices.Equal(got, full) {
			t.Fatalf("tokenizer.json gives %v, vocab.txt %v", full, got)
		}
		for _, id := range full {
			if id < 0 || int(id) >= js.VocabSize() {
				t.Fatalf("id %d outside the vocabulary of %d", id, js.VocabSize())
			}
		}
		wrap := func(ids ...[]int32) []int32 {
			out := []int32{js.CLSID}
			for _, s := range ids {
				out = append(out, s...)
			}
			return append(out, js.SEPID)
		}
		for _, maxLen := range []int{0, 1, 2, 5, 16} {
			want := full
			if maxLen > 0 {
				want = full[:min(len(full), max(maxLen-2, 0))]
			}
			if got := js.Encode(text, maxLen); !slices.Equal(got, wrap(want)) {
				t.Fatalf("Encode(maxLen %d) = %v, want %v", maxLen, got, wrap(want))
			}
		}
		const maxLen, head = 16, 4
		want := wrap(full)
		if len(full) > maxLen-2 {
			want = wrap(full[:head], full[len(full)-(maxLen-2-head):])
		}
		if got := js.EncodeHeadTail(text, maxLen, head); !slices.Equal(got, want) {
			t.Fatalf("EncodeHeadTail = %v, want %v", got, want)
		}
	})
}

// FuzzTokenizerFiles reads arbitrary bytes as tokenizer.json and as vocab.txt: an error naming the
// file, or a tokenizer whose ids all lie in its vocabulary. Never a panic.
func FuzzTokenizerFiles(f *testing.F) {
	f.Add([]byte(`{"normalizer":{"type":"BertNormalizer","lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},` +
		`"post_processor":{"type":"BertProcessing","cls":["[CLS]",2],"sep":["[SEP]",3]},` +
		`"added_tokens":[{"id":0,"content":"[PAD]","special":true}],` +
		`"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"good":4,"##s":5,"film":6}}}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"BertPreTokenizer"},"added_tokens":[{"id":-1,"content":"x"}],"model":{"type":"WordPiece","unk_token":"a","vocab":{"a":0,"[CLS]":1,"[SEP]":2}}}`))
	f.Add([]byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\n##s\nfilm\n"))
	f.Add([]byte("[UNK]\n[UNK]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"tokenizer.json", "vocab.txt"} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var w *WordPiece
			var err error
			if name == "tokenizer.json" {
				w, err = LoadWordPieceJSON(p)
			} else {
				w, err = LoadWordPieceVocab(p, DefaultVocabConfig())
			}
			if err != nil {
				if !strings.Contains(err.Error(), "wordpiece: ") {
					t.Fatalf("%s: error without context: %v", name, err)
				}
				continue
			}
			for _, text := range []string{"Good films, good FILM.", "日本 ##s [UNK] x" + string(b[:min(len(b), 40)])} {
				for _, id := range w.Encode(text, 0) {
					if id < 0 || int(id) >= w.VocabSize() {
						t.Fatalf("%s: id %d outside the vocabulary of %d", name, id, w.VocabSize())
					}
				}
			}
		}
	})
}

// FuzzParseVocab reads arbitrary bytes as a word vocabulary: an error naming the file and line, or
// a vocabulary that writes back to the same bytes.
func FuzzParseVocab(f *testing.F) {
	f.Add([]byte("<unk>\n<pad>\nthe\nmovie\n"))
	f.Add([]byte("<unk>\n<pad>\nthe\nthe\n"))
	f.Add([]byte("<unk>\r\n<pad>\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVocab(b, "vocab.txt")
		if err != nil {
			if !strings.Contains(err.Error(), "vocabulary vocab.txt") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		var sb strings.Builder
		if _, err := v.WriteTo(&sb); err != nil {
			t.Fatal(err)
		}
		if got := sb.String(); got != strings.TrimSuffix(string(b), "\n")+"\n" {
			t.Fatalf("written back as %q, read from %q", got, b)
		}
	})
}

// FuzzLoad reads arbitrary bytes through Load as each kind of data file it accepts (a tar
// archive, gzip-compressed or not, CSV, TSV, JSONL): an error that names the file, or a corpus.
// Never a panic.
func FuzzLoad(f *testing.F) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for i, m := range []string{"train/pos/1_9.txt", "train/neg/2_2.txt", "test/pos/3_8.txt", "test/neg/4_1.txt", "train/pos/5_10.txt", "train/neg/6_3.txt"} {
		text := fmt.Sprintf("review %d: a fine film<br />with a plot.", i)
		tw.WriteHeader(&tar.Header{Name: "aclImdb/" + m, Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
		tw.Write([]byte(text))
	}
	tw.Close()
	f.Add(tarBuf.Bytes())
	f.Add(tarBuf.Bytes()[:1000])
	f.Add([]byte("text,label,split\n\"a fine, film\",pos,train\nbad film,neg,test\ngood,pos,valid\nawful,neg,train\n"))
	f.Add([]byte("text\tlabel\nfine\tpos\nbad\tneg\n"))
	f.Add([]byte(`{"text":"fine","label":"pos"}` + "\n" + `{"text":"bad","label":1}` + "\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(b)
		zw.Close()
		for _, c := range []struct {
			name string
			data []byte
		}{{"reviews.tar", b}, {"reviews.tar.gz", gz.Bytes()}, {"reviews.csv", b}, {"reviews.tsv", b}, {"reviews.jsonl", b}} {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			corpus, err := Load(context.Background(), Options{Path: p, Seed: DefaultSeed})
			if err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("%s: error does not name the file: %v", c.name, err)
				}
				continue
			}
			if len(corpus.Texts()) != len(corpus.Labels()) {
				t.Fatalf("%s: %d texts, %d labels", c.name, len(corpus.Texts()), len(corpus.Labels()))
			}
		}
	})
}
