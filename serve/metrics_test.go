package serve

import (
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMetricsExposition serves some traffic and checks /metrics against the text exposition
// format's rules, with promtool too when it is installed: the server's own series with their
// values, and the Go runtime's and the process's standard ones.
func TestMetricsExposition(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	postTexts(t, ts.URL, "0.9", "0.1")
	call(t, "GET", ts.URL+"/v1/predict?text=0.4", "")
	call(t, "GET", ts.URL+"/v1/predict", "")
	call(t, "GET", ts.URL+"/healthz", "")
	call(t, "GET", ts.URL+"/nowhere", "")
	code, h, b := call(t, "GET", ts.URL+"/metrics", "")
	// promhttp adds the name escaping scheme of the format to the content type.
	if ct := h.Get("Content-Type"); code != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
		t.Fatalf("%d %s", code, ct)
	}
	text := string(b)
	if err := checkExposition(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	// The client library writes the labels of a series in name order.
	for series, want := range map[string]float64{
		`sentibench_http_requests_total{code="200",endpoint="/v1/predict"}`:                 2,
		`sentibench_http_requests_total{code="400",endpoint="/v1/predict"}`:                 1,
		`sentibench_http_requests_total{code="200",endpoint="/healthz"}`:                    1,
		`sentibench_http_requests_total{code="404",endpoint="other"}`:                       1,
		`sentibench_http_request_duration_seconds_count{endpoint="/v1/predict"}`:            3,
		`sentibench_http_request_duration_seconds_bucket{endpoint="/v1/predict",le="+Inf"}`: 3,
		`sentibench_batch_size_count`:                                                       2,
		`sentibench_batch_size_sum`:                                                         3,
		`sentibench_batch_duration_seconds_count`:                                           2,
		`sentibench_texts_total`:                                                            3,
		`sentibench_errors_total{kind="bad_request"}`:                                       1,
		`sentibench_errors_total{kind="model"}`:                                             0,
		`sentibench_errors_total{kind="not_ready"}`:                                         0,
		`sentibench_ready`:                    1,
		`sentibench_model_info{model="fake"}`: 1,
		`sentibench_in_flight_requests`:       0,
		`sentibench_queued_requests`:          0,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// The standard collectors: the Go runtime's and the process's (the CPU seconds of a short
	// test may still be 0).
	for _, series := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_gomemlimit_bytes",
		"process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"} {
		if got := metricValue(t, text, series); got <= 0 {
			t.Errorf("%s = %v, want > 0", series, got)
		}
	}
	if got := metricValue(t, text, "process_cpu_seconds_total"); got < 0 {
		t.Errorf("process_cpu_seconds_total = %v", got)
	}
	for _, help := range []string{
		"# HELP sentibench_http_requests_total HTTP requests served, by endpoint and status code.\n# TYPE sentibench_http_requests_total counter\n",
		"# HELP sentibench_batch_size Texts per call of the model (micro-batches).\n# TYPE sentibench_batch_size histogram\n",
		"# TYPE sentibench_ready gauge\n",
	} {
		if !strings.Contains(text, help) {
			t.Errorf("no %q in\n%s", help, text)
		}
	}
	promtoolCheck(t, text)
}

// promtoolCheck runs `promtool check metrics` (its lint included) on an exposition when
// promtool is installed (.ci/run installs it).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not installed: its check is skipped")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsNotReady: before its model, the server serves sentibench_ready 0, no model series,
// and every error kind at 0.
func TestMetricsNotReady(t *testing.T) {
	_, ts := newTestServer(t, nil, Options{})
	call(t, "GET", ts.URL+"/v1/predict?text=0.4", "")
	_, _, b := call(t, "GET", ts.URL+"/metrics", "")
	text := string(b)
	if err := checkExposition(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if got := metricValue(t, text, "sentibench_ready"); got != 0 {
		t.Errorf("sentibench_ready = %v, want 0", got)
	}
	if got := metricValue(t, text, `sentibench_errors_total{kind="not_ready"}`); got != 1 {
		t.Errorf("not_ready errors = %v, want 1", got)
	}
	if strings.Contains(text, "sentibench_model_info{") {
		t.Errorf("a model series without a model:\n%s", text)
	}
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelRE  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

// checkExposition checks the rules of the Prometheus text format (0.0.4) that matter here:
// line syntax, one TYPE per family before its samples, families not interleaved, no series
// twice, summaries' _sum and _count (the Go collector's go_gc_duration_seconds), and histograms with ascending cumulative buckets ending in +Inf equal to _count.
func checkExposition(text string) error {
	if !strings.HasSuffix(text, "\n") {
		return fmt.Errorf("no final line feed")
	}
	types := map[string]string{}
	seen := map[string]bool{}
	done := map[string]bool{} // families whose lines have ended
	current := ""
	type hist struct {
		les    []float64
		counts []float64
		count  float64
		hasCnt bool
	}
	hists := map[string]*hist{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n := i + 1
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				return fmt.Errorf("line %d: bad comment %q", n, line)
			}
			if f[1] == "TYPE" {
				if len(f) != 4 || !strings.Contains(" counter gauge histogram summary untyped ", " "+f[3]+" ") {
					return fmt.Errorf("line %d: bad TYPE %q", n, line)
				}
				if _, ok := types[f[2]]; ok {
					return fmt.Errorf("line %d: second TYPE for %s", n, f[2])
				}
				types[f[2]] = f[3]
			}
			if f[2] != current {
				if done[f[2]] {
					return fmt.Errorf("line %d: family %s interleaved", n, f[2])
				}
				if current != "" {
					done[current] = true
				}
				current = f[2]
			}
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("line %d: bad sample %q", n, line)
		}
		name, labels, value := m[1], m[3], m[4]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil && value != "+Inf" && value != "-Inf" && value != "NaN" {
			return fmt.Errorf("line %d: bad value %q", n, value)
		}
		family, suffix := name, ""
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, s)
			if ok && (types[base] == "histogram" || types[base] == "summary" && s != "_bucket") {
				family, suffix = base, s
			}
		}
		if types[family] == "" {
			return fmt.Errorf("line %d: %s has no TYPE before it", n, family)
		}
		if family != current {
			return fmt.Errorf("line %d: sample of %s under %s", n, family, current)
		}
		var rest []string // labels other than le
		le := math.NaN()
		for l := labels; l != ""; {
			lm := labelRE.FindStringSubmatch(l)
			if lm == nil {
				return fmt.Errorf("line %d: bad labels %q", n, labels)
			}
			if lm[1] == "le" {
				if le, err = strconv.ParseFloat(lm[2], 64); err != nil {
					return fmt.Errorf("line %d: bad le %q", n, lm[2])
				}
			} else {
				rest = append(rest, lm[1]+"="+lm[2])
			}
			l = l[len(lm[0]):]
		}
		key := name + "{" + labels + "}"
		if seen[key] {
			return fmt.Errorf("line %d: series %s twice", n, key)
		}
		seen[key] = true
		if types[family] != "histogram" {
			continue
		}
		hk := family + "{" + strings.Join(rest, ",") + "}"
		h := hists[hk]
		if h == nil {
			h = &hist{}
			hists[hk] = h
		}
		switch suffix {
		case "_bucket":
			if math.IsNaN(le) {
				return fmt.Errorf("line %d: bucket without le", n)
			}
			if k := len(h.les); k > 0 && (le <= h.les[k-1] || v < h.counts[k-1]) {
				return fmt.Errorf("line %d: buckets not ascending and cumulative", n)
			}
			h.les, h.counts = append(h.les, le), append(h.counts, v)
		case "_count":
			h.count, h.hasCnt = v, true
		}
	}
	for k, h := range hists {
		if len(h.les) == 0 || !math.IsInf(h.les[len(h.les)-1], 1) {
			return fmt.Errorf("%s: no +Inf bucket", k)
		}
		if !h.hasCnt || h.counts[len(h.counts)-1] != h.count {
			return fmt.Errorf("%s: +Inf bucket differs from _count", k)
		}
	}
	return nil
}

// TestCheckExpositionRejects: the checker above can fail.
func TestCheckExpositionRejects(t *testing.T) {
	good := "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
	if err := checkExposition(good); err != nil {
		t.Fatalf("good input refused: %v", err)
	}
	for _, bad := range []string{
		"x 1\n", // no TYPE
		"# TYPE x counter\nx{a=\"b} 1\n",
		"# TYPE x counter\nx 1\nx 2\n",
		"# TYPE x counter\n# TYPE y counter\ny 1\nx 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
		"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
		"# TYPE x counter\nx one\n",
		"# TYPE x counter\nx 1",
	} {
		if checkExposition(bad) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
