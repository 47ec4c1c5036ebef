package bert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// FuzzConfig loads the mini BERT's weights under an arbitrary config.json: an error naming the
// file, or an encoder whose forward pass runs on inputs within its stated limits. Never a panic.
// `go test` runs the seeds; `go test -fuzz FuzzConfig ./nn/bert` searches.
func FuzzConfig(f *testing.F) {
	good, err := os.ReadFile("testdata/mini-bert/config.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"num_attention_heads": 2`, `"num_attention_heads": 4`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"num_attention_heads": 2`, `"num_attention_heads": 0`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"num_hidden_layers": 2`, `"num_hidden_layers": 1`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"hidden_act": "gelu"`, `"hidden_act": "relu"`, 1)))
	f.Add([]byte(`{"model_type":"distilbert","vocab_size":1000,"dim":16,"n_layers":2,"n_heads":2,"hidden_dim":32,"max_position_embeddings":64}`))
	dir := testutil.CopyDir(f, "testdata/mini-bert", "pytorch_model.bin", "pytorch_model.fp16.bin", "pytorch_model.bf16.bin")
	cpu := testCPU(f, 1)
	f.Fuzz(func(t *testing.T, config []byte) {
		p := filepath.Join(dir, "config.json")
		if err := os.WriteFile(p, config, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(dir, cpu)
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the model: %v", err)
			}
			return
		}
		n := min(m.Config.MaxLen(), 7)
		seq := make([]int32, n)
		for i := range seq {
			seq[i] = int32(i*131) % int32(m.Config.VocabSize)
		}
		if _, err := m.Forward([][]int32{seq, seq[:1]}); err != nil {
			t.Fatalf("config %s loads, but the forward pass fails: %v", config, err)
		}
	})
}
