// Package profile measures training while it runs.
//
// Meter (a train.Meter) measures each epoch: wall time split into phases, the process's peak
// resident memory (reset at each epoch start), the Go heap's peak, throughput, and on a GPU the
// device memory high-water mark (through the DeviceMemory interface the CUDA allocator
// implements). The trainer prints the epoch line and writes the JSONL run log from what it
// returns. Reports on finished runs (tables and charts) are package report's.
package profile
