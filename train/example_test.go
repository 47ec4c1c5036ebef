package train_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/sentibench/sentibench/train"
)

// Train the recipe's cnn on the bundled sample for two epochs, then classify a review with the
// best checkpoint.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "sentibench-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := train.DefaultConfig("cnn") // the recipe: embedding 100, widths 3/4/5 x 100, Adam 1e-3
	cfg.Data = "sample"               // the bundled sample; an IMDB archive path works the same
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(dir, "cnn")
	hooks := train.Hooks{
		Log:      io.Discard, // the epoch lines; os.Stdout prints them
		Progress: io.Discard,
		OnEpoch: func(r train.EpochRecord) error {
			fmt.Printf("epoch %d done\n", r.Epoch)
			return nil
		},
	}
	res, err := train.Run(context.Background(), cfg, hooks)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("test examples:", res.Test.N)

	p, err := train.Load(res.RunDir, train.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	probs, err := p.Predict([]string{"A moving, beautifully acted film."})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("probability in [0, 1]:", probs[0] >= 0 && probs[0] <= 1)
	// Output:
	// epoch 1 done
	// epoch 2 done
	// test examples: 1500
	// probability in [0, 1]: true
}
