// Package profile measures training: each epoch's wall time split into phases, the process's
// peak resident memory (reset at each epoch start), Go heap peak, throughput, and on a GPU the
// device memory high-water mark. It writes the epoch line and the JSONL run log, and turns run
// directories into comparison tables and charts.
package profile
