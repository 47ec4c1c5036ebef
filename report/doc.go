// Package report compares finished runs: their tables and charts.
//
// LoadRun reads a run directory (the run log through train.ReadRunLogFile, config.json, the
// checkpoints) or a bare run log (sentibench's, or the PyTorch reference trainer's --json);
// Compare turns runs into a comparison table written as text, Markdown or CSV (with a run of more
// than two classes: its test macro-F1 and mean absolute error as columns, and in text and
// Markdown a table of its test by class, from its run log's test_metrics); WriteCharts draws
// PNG bar charts and per-epoch curves; Write does all of it for a list of run directories
// (sentibench report, and sentibench bench at the end of its matrix). What a run measured while
// it ran comes from package profile's Meter, through the run log.
package report
