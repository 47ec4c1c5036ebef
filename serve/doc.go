// Package serve serves a trained text classifier over HTTP: a JSON prediction API
// (POST /v1/predict with {"texts": [...]}, or GET /v1/predict?text=...: per text the label, the
// predicted class and every class's probability), the model's name and classes (GET /v1/model),
// a small web page at / (inline HTML, CSS and JavaScript embedded in the binary: the six
// sentiment levels for a binary sentiment model, every class's probability for any other),
// /healthz, /readyz, and /metrics in
// the Prometheus text format (through prometheus/client_golang, on a registry of the server's
// own: its series and the Go runtime's and the process's standard ones).
//
// Every request gets an ID: the client's X-Request-ID when it is 1 to 128 printable ASCII
// characters, else a new one (16 hex digits); a request whose X-Request-ID is longer, holds
// other bytes or is given twice is refused with 400. The ID is in the answer's X-Request-ID
// header, in the body of an error answer and in the request's record in the log
// (Options.Logger, log/slog): one record per request, at debug level when it succeeded and at
// warn with the error when it failed.
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
