package report_test

import (
	"fmt"
	"os"

	"github.com/sentibench/sentibench/report"
)

// Write compares runs; here a log of the PyTorch reference trainer alone.
func ExampleWrite() {
	_, err := report.Write(os.Stdout, []string{"testdata/torch_cnn.jsonl"}, report.Options{Format: report.FormatMarkdown})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// | run | framework | model | device | dropout | params | checkpoint | epochs | best valid acc | test acc | s/epoch | tokens/s | peak RSS MiB | peak GPU MiB |
	// |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
	// | torch_cnn | torch 2.15.0 | cnn | cpu | 0.5 | 1,009,901 | - | 3 | 52.50% | 51.25% | 8.6 | 9,771 | 1,282* | - |
	//
	// \* whole-process peak RSS (getrusage ru_maxrss: data loading and earlier epochs included), not per epoch
}
