// Package profile measures training and reports on it.
//
// Meter (a train.Meter) measures each epoch: wall time split into phases, the process's peak
// resident memory (reset at each epoch start), the Go heap's peak, throughput, and on a GPU the
// device memory high-water mark (through the DeviceMemory interface the CUDA allocator
// implements). The trainer prints the epoch line and writes the JSONL run log from what it
// returns.
//
// LoadRun reads a run directory (the run log, config.json, the checkpoints); Compare turns runs
// into a comparison table written as text, Markdown or CSV; WriteCharts draws PNG bar charts and
// per-epoch curves; Report does all of it for a list of run directories (sentibench report, and
// sentibench bench at the end of its matrix).
package profile
