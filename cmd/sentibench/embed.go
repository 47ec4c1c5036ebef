package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/features"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
	"github.com/sentibench/sentibench/train"
)

func newEmbedCmd() *cobra.Command {
	var (
		encoder, dataF, cacheDir, blasF, prog   string
		device, shardF                          string
		merge                                   bool
		limit, batchSize, threads, truncateHead int
		layers                                  []int
		seed                                    uint64
	)
	cmd := &cobra.Command{
		Use:   "embed --encoder DIR|HUB_ID",
		Short: "Build the frozen encoder's feature cache of a data set ahead of training (bigru)",
		Long: `embed runs a frozen BERT-family encoder once over every review of the data set and
stores the last hidden states on disk (float16, memory-mapped), keyed by the encoder's weights,
tokenizer, maximum length and the data. 'sentibench train --model bigru' with the same encoder,
data and --limit reuses it at once; an interrupted build resumes where it stopped. The disk
space and an estimate of the time are printed before the work starts.

--shard K/N builds only shard K of N (counted from 0) of the cache: a contiguous part of
about 1/N of its word pieces, in a directory of its own beside the cache's. The N shards
may run at the same time, as separate processes on one machine or on several that share
the --feature-cache directory (a Kubernetes Indexed Job, a Slurm array). When all are
built, the same command with --merge instead of --shard joins them into the cache, the
same bytes as an unsharded build with the same --threads, and removes them. Every shard and
the merge need the same encoder, data, --limit, --seed, --encoder-layers, --truncate-head
and --batch-size.
--feature-cache may also name one cache directory (the path embed prints): it is used only
when it is the cache of these settings; a cache of other settings is refused, naming them.`,
		Example: `  sentibench embed --encoder sentence-transformers/all-MiniLM-L6-v2
  sentibench embed --encoder path/to/all-MiniLM-L6-v2 --data ../shared/data/imdb/aclImdb_v1_labelled.tar.gz
  sentibench embed --encoder path/to/all-MiniLM-L6-v2 --shard 0/2 &   # on one machine or node
  sentibench embed --encoder path/to/all-MiniLM-L6-v2 --shard 1/2 &   # on another
  wait; sentibench embed --encoder path/to/all-MiniLM-L6-v2 --merge`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var shard *features.Shard
			if cmd.Flags().Changed("shard") {
				sh, err := features.ParseShard(shardF)
				if err != nil {
					return usageError{fmt.Sprintf("--shard %s: %v", shardF, err)}
				}
				if merge {
					return usageError{fmt.Sprintf("--shard %s: give --shard K/N to build one shard or --merge to join them, not both", shardF)}
				}
				shard = &sh
			}
			if encoder == "" {
				return usageError{"--encoder is required (a Hugging Face model directory or hub id)"}
			}
			mode, err := progress.ParseMode(prog)
			if err != nil {
				return usageError{err.Error()}
			}
			gdev, err := train.OpenGPU(device)
			if err != nil {
				return err
			}
			if gdev != nil {
				defer gdev.Close()
				fmt.Fprintf(cmd.ErrOrStderr(), "Encoder: on %s\n", gdev.Name())
			}
			ctx := cmd.Context()
			path, err := data.Resolve(ctx, data.Locator{Path: dataF, Env: data.EnvFrom(os.Getenv), Progress: cmd.ErrOrStderr(), ProgressMode: mode})
			if err != nil {
				return err
			}
			corpus, err := data.Load(ctx, data.Options{Path: path, Limit: limit, Seed: seed, Progress: cmd.ErrOrStderr(), ProgressMode: mode})
			if err != nil {
				return err
			}
			dir, err := bert.Resolve(ctx, encoder, bert.ResolveOptions{Progress: cmd.ErrOrStderr(), ProgressMode: mode})
			if err != nil {
				return err
			}
			impl, err := blas.Load(blasF)
			if err != nil {
				return err
			}
			impl.SetThreads(1) // the encoder runs one goroutine per core over a one-threaded BLAS (fastest, measured in nn/bert)
			if cacheDir == "" {
				if cacheDir, err = features.DefaultCacheDir(); err != nil {
					return err
				}
			}
			opt := features.Options{Encoder: dir, CPU: nn.NewCPU(impl, threads), CacheDir: cacheDir, BatchSize: batchSize,
				TruncateHead: truncateHead, Layers: layers, Progress: cmd.ErrOrStderr(), ProgressMode: mode}
			release := train.EncoderOn(gdev, &opt)
			var out string
			switch {
			case merge:
				out, err = features.Merge(ctx, corpus.Texts(), opt)
			case shard != nil:
				out, err = features.BuildShard(ctx, corpus.Texts(), opt, *shard)
			default:
				out, err = features.Build(ctx, corpus.Texts(), opt)
			}
			if rerr := release(); err == nil {
				err = rerr
			}
			if err != nil {
				return err
			}
			if shard != nil && strings.Contains(filepath.Base(out), ".shard-") {
				fmt.Fprintf(cmd.ErrOrStderr(), "Shard %s is built. When all %d are, join them: the same command with --merge instead of --shard.\n", shard, shard.N)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&encoder, "encoder", "", "the frozen encoder: a Hugging Face model directory or hub id")
	f.StringVar(&dataF, "data", "", "data set (as for train)")
	f.IntVar(&limit, "limit", 0, "seeded sample of this many reviews per IMDB folder (as for train)")
	f.Uint64Var(&seed, "seed", data.DefaultSeed, "seed of the --limit sample (as for train)")
	f.StringVar(&cacheDir, "feature-cache", "", "root directory of the feature caches (default $SENTIBENCH_CACHE/features), or one cache's directory")
	f.StringVar(&shardF, "shard", "", "build only shard K of N (K/N, K from 0) of the cache; join the N shards with --merge")
	f.BoolVar(&merge, "merge", false, "join the shards built with --shard K/N into the cache (the same settings as theirs)")
	f.IntVar(&batchSize, "batch-size", 0, "reviews per encoder batch (default 128)")
	f.IntSliceVar(&layers, "encoder-layers", nil, "average these hidden states of the encoder instead of taking its last (as train --encoder-layers)")
	f.IntVar(&truncateHead, "truncate-head", 0, "truncate a review longer than the encoder's maximum head+tail, keeping its first N word pieces and its last ones (as train --truncate-head; 0: its first ones)")
	f.IntVar(&threads, "threads", 0, "worker threads (default: all cores)")
	f.StringVar(&device, "device", "cpu", "where the encoder runs: cpu, cuda or cuda:N (a build with CUDA, make gpu)")
	f.StringVar(&blasF, "blas", os.Getenv("SENTIBENCH_BLAS"), "CPU BLAS: auto, openblas, go, go-avx2, gonum or a library path")
	f.StringVar(&prog, "progress", "auto", "progress display: auto, bar, lines or quiet")
	return cmd
}
