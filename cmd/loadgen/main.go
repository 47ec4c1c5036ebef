// Command loadgen measures a `sentibench serve` server under load: closed-loop clients on
// keep-alive connections send reviews to POST /v1/predict for a bounded time (and, optionally,
// a bounded number of requests) at each concurrency level, and it reports reviews per second,
// latency percentiles, errors, and the server's mean batch size (from /metrics).
//
//	loadgen -url http://127.0.0.1:8080 -c 1,16,64 -duration 10s -reviews imdb
//
// Reviews: "short" (a few one-sentence reviews), "imdb" (the test reviews of the bundled IMDB
// sample, 120 to 13,000 characters, as real traffic) or a file with one review per line.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentibench/sentibench/data"
)

func main() {
	var (
		base     = flag.String("url", "http://127.0.0.1:8080", "the server's base URL")
		levels   = flag.String("c", "1,16,64", "concurrency levels (clients), comma-separated")
		duration = flag.Duration("duration", 10*time.Second, "measuring time per level")
		warmup   = flag.Duration("warmup", time.Second, "unmeasured load before each level")
		maxReq   = flag.Int("requests", 0, "stop a level after this many requests (0: time only)")
		perReq   = flag.Int("texts", 1, "reviews per request")
		reviews  = flag.String("reviews", "imdb", `reviews to send: "short", "imdb" (the bundled sample's test reviews) or a file, one per line`)
		timeout  = flag.Duration("timeout", 30*time.Second, "client timeout of one request")
		format   = flag.String("format", "markdown", "output: markdown or json")
	)
	flag.Parse()
	if err := run(*base, *levels, *duration, *warmup, *maxReq, *perReq, *reviews, *timeout, *format); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Result is the measurement of one concurrency level.
type Result struct {
	Clients   int     `json:"clients"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Reviews   int     `json:"reviews"`
	Seconds   float64 `json:"seconds"`
	ReviewsPS float64 `json:"reviews_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// MeanBatch is the server's mean texts per call of the model during the level.
	MeanBatch float64 `json:"mean_batch"`
	// FirstError is one error message, when there were errors.
	FirstError string `json:"first_error,omitempty"`
}

func run(base, levels string, duration, warmup time.Duration, maxReq, perReq int, reviews string, timeout time.Duration, format string) error {
	if perReq < 1 {
		return errors.New("-texts must be at least 1")
	}
	var clients []int
	for _, f := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return fmt.Errorf("bad concurrency %q in -c", f)
		}
		clients = append(clients, c)
	}
	texts, err := loadReviews(reviews)
	if err != nil {
		return err
	}
	base = strings.TrimSuffix(base, "/")
	model, err := waitReady(base, 30*time.Second)
	if err != nil {
		return err
	}
	// Pre-encode the request bodies.
	bodies := make([][]byte, len(texts))
	for i := range texts {
		batch := make([]string, perReq)
		for k := range batch {
			batch[k] = texts[(i+k)%len(texts)]
		}
		if bodies[i], err = json.Marshal(map[string][]string{"texts": batch}); err != nil {
			return err
		}
	}
	var mean, sumLen float64
	for _, t := range texts {
		sumLen += float64(len(t))
	}
	mean = sumLen / float64(len(texts))
	fmt.Fprintf(os.Stderr, "loadgen: %s serving %s; %d %s reviews (mean %.0f bytes), %d per request, %v per level\n",
		base, model, len(texts), reviews, mean, perReq, duration)

	var results []Result
	for _, c := range clients {
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
		if warmup > 0 {
			load(client, base, bodies, c, warmup, 0, perReq)
		}
		b0, n0, err := batchStats(client, base)
		if err != nil {
			return err
		}
		r := load(client, base, bodies, c, duration, maxReq, perReq)
		b1, n1, err := batchStats(client, base)
		if err != nil {
			return err
		}
		if n1 > n0 {
			r.MeanBatch = (b1 - b0) / (n1 - n0)
		}
		client.CloseIdleConnections()
		fmt.Fprintf(os.Stderr, "loadgen: %d clients: %.0f reviews/s, p50 %.1f ms, p99 %.1f ms, %d errors\n", c, r.ReviewsPS, r.P50ms, r.P99ms, r.Errors)
		results = append(results, r)
	}
	if format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"url": base, "model": model, "reviews": reviews, "texts_per_request": perReq, "results": results})
	}
	fmt.Printf("model %s, %s reviews (mean %.0f bytes), %d per request, %v per level\n\n", model, reviews, mean, perReq, duration)
	fmt.Println("| clients | requests | errors | reviews/s | p50 ms | p90 ms | p99 ms | max ms | mean batch |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Printf("| %d | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
			r.Clients, r.Requests, r.Errors, r.ReviewsPS, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.MeanBatch)
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Printf("\n%d clients, first error: %s\n", r.Clients, r.FirstError)
		}
	}
	return nil
}

// load runs c closed-loop clients for d (or until maxReq requests) and measures them.
func load(client *http.Client, base string, bodies [][]byte, c int, d time.Duration, maxReq, perReq int) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		sent     atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myErrs int
			var myFirst string
			for i := w; ctx.Err() == nil; i += c {
				if maxReq > 0 && sent.Add(1) > int64(maxReq) {
					break
				}
				t0 := time.Now()
				err := post(ctx, client, base, bodies[i%len(bodies)])
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the level: not the server's error
				}
				if err != nil {
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += myErrs
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p*float64(len(lat))+0.5) - 1
		return float64(lat[min(max(i, 0), len(lat)-1)]) / 1e6
	}
	return Result{
		Clients: c, Requests: len(lat) + errs, Errors: errs, Reviews: len(lat) * perReq, Seconds: elapsed,
		ReviewsPS: float64(len(lat)*perReq) / elapsed,
		P50ms:     pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), MaxMs: pct(1),
		FirstError: firstErr,
	}
}

func post(ctx context.Context, client *http.Client, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/predict", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// waitReady waits for /readyz and returns the model's name.
func waitReady(base string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			var body struct{ Status, Model string }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body.Model, nil
			}
			err = fmt.Errorf("readyz: %d %s", resp.StatusCode, body.Status)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after %v: %w", base, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// batchStats reads the server's batch-size sum and count from /metrics.
func batchStats(client *http.Client, base string) (sum, count float64, err error) {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "sentibench_batch_size_sum":
			sum, _ = strconv.ParseFloat(value, 64)
		case "sentibench_batch_size_count":
			count, _ = strconv.ParseFloat(value, 64)
		}
	}
	return sum, count, sc.Err()
}

var shortReviews = []string{
	"An absolute masterpiece. The performances are stunning and the story stayed with me for days.",
	"The worst movie I have seen in years. Boring, ugly and far too long.",
	"A pleasant enough film with a few good laughs, though the second half drags.",
	"I wanted to like it, but the plot is a mess and the dialogue is painfully flat.",
	"Great cast, great music, great fun!",
	"Not bad at all: clever, warm and surprisingly moving.",
	"Two hours of my life I will never get back.",
	"The director's best work so far, and that is saying a lot.",
}

func loadReviews(spec string) ([]string, error) {
	switch spec {
	case "short":
		return shortReviews, nil
	case "imdb":
		c, err := data.Load(context.Background(), data.Options{Path: data.SampleName})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, i := range c.Test {
			out = append(out, c.Examples[i].Text)
		}
		return out, nil
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no reviews", spec)
	}
	return out, nil
}
