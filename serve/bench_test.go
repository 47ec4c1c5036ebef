package serve

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// BenchmarkServeOverhead measures the server's own cost per request, over loopback HTTP with
// keep-alive, against a model that costs nothing: parsing, checks, the batcher, JSON, metrics.
// With -cpu 1,2 it shows how the batcher groups concurrent clients (b.RunParallel runs
// GOMAXPROCS clients; SetParallelism multiplies them by 8).
func BenchmarkServeOverhead(b *testing.B) {
	s, ts := newTestServer(b, &fakeModel{}, Options{})
	body := []byte(`{"texts": ["A pleasant enough film with a few good laughs, though the second half drags."]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(ts.URL+"/v1/predict", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reviews/s")
	var batches dto.Metric
	if err := s.metrics.batchSize.Write(&batches); err != nil {
		b.Fatal(err)
	}
	if h := batches.GetHistogram(); h.GetSampleCount() > 0 {
		b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "texts/batch")
	}
}
