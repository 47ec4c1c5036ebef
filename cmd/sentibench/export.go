package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/onnxexport"
)

func newExportCmd() *cobra.Command {
	var run, format, out, checkpoint string
	cmd := &cobra.Command{
		Use:   "export --run RUN_DIR --format onnx --out MODEL.onnx",
		Short: "Export a trained run's model to ONNX, with a JSON sidecar describing its tokenizer",
		Long: `export writes a run's model as an ONNX file (opset 17, dynamic batch and sequence axes)
that ONNX Runtime runs in any language, and beside it MODEL.onnx.json: the vocabulary and the
tokenizer's rules (cnn, lstm), or how to compute the encoder's features (bigru: the file is the
head), the labels, and what the inputs and outputs are. The graph's inputs are the token ids (or
the features) and each text's length; its outputs the logit and its sigmoid, the probability of
the positive class.`,
		Example: `  sentibench export --run runs/cnn-1 --format onnx --out cnn.onnx`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case run == "":
				return usageError{"--run RUN_DIR is required"}
			case out == "":
				return usageError{"--out FILE is required (the ONNX file to write)"}
			case format != "onnx":
				return usageError{fmt.Sprintf("--format %s: want onnx", format)}
			case checkpoint != "best" && checkpoint != "last":
				return usageError{fmt.Sprintf("--checkpoint %s: want best or last", checkpoint)}
			}
			e, err := onnxexport.FromRun(run, onnxexport.Options{Checkpoint: checkpoint, Producer: buildVersion()})
			if err != nil {
				return err
			}
			if err := e.Write(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, opset %d) and %s\n", out, e.Sidecar.Kind, onnxexport.Opset, out+onnxexport.SidecarSuffix)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&run, "run", "", "the run directory")
	f.StringVar(&format, "format", "onnx", "the format to write (onnx)")
	f.StringVar(&out, "out", "", "the file to write (the sidecar goes to FILE.json)")
	f.StringVar(&checkpoint, "checkpoint", "best", "best or last")
	return cmd
}
