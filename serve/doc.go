// Package serve serves a trained text classifier over HTTP: a JSON prediction API
// (POST /v1/predict with {"texts": [...]}, or GET /v1/predict?text=...), a small web page at /
// (inline HTML, CSS and JavaScript embedded in the binary), /healthz, /readyz, and /metrics in
// the Prometheus text format.
//
// Concurrent requests are micro-batched: one goroutine feeds the model, and a request waits at
// most Options.BatchWait for others to share its call of the model (up to Options.MaxBatch
// texts), and only while other requests are on their way. Request bodies, texts and their
// number are limited, and texts must be valid UTF-8 (400 otherwise, as the data readers); every request has a deadline; Run shuts down gracefully (not ready first,
// then the requests in flight finish).
//
// The server works against the small Model interface; FromPredictor adapts a run loaded with
// train.Load. The command `sentibench serve` wires the two.
package serve
