package serve

import (
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsExposition serves some traffic and checks /metrics against the text exposition
// format's rules, with promtool too when it is installed.
func TestMetricsExposition(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	postTexts(t, ts.URL, "0.9", "0.1")
	call(t, "GET", ts.URL+"/v1/predict?text=0.4", "")
	call(t, "GET", ts.URL+"/v1/predict", "")
	call(t, "GET", ts.URL+"/healthz", "")
	call(t, "GET", ts.URL+"/nowhere", "")
	code, h, b := call(t, "GET", ts.URL+"/metrics", "")
	if code != 200 || h.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("%d %s", code, h.Get("Content-Type"))
	}
	text := string(b)
	if err := checkExposition(text); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for series, want := range map[string]float64{
		`sentibench_http_requests_total{endpoint="/v1/predict",code="200"}`:                 2,
		`sentibench_http_requests_total{endpoint="/v1/predict",code="400"}`:                 1,
		`sentibench_http_requests_total{endpoint="/healthz",code="200"}`:                    1,
		`sentibench_http_requests_total{endpoint="other",code="404"}`:                       1,
		`sentibench_http_request_duration_seconds_count{endpoint="/v1/predict"}`:            3,
		`sentibench_http_request_duration_seconds_bucket{endpoint="/v1/predict",le="+Inf"}`: 3,
		`sentibench_batch_size_count`:                                                       2,
		`sentibench_batch_size_sum`:                                                         3,
		`sentibench_texts_total`:                                                            3,
		`sentibench_errors_total{kind="bad_request"}`:                                       1,
		`sentibench_errors_total{kind="model"}`:                                             0,
		`sentibench_ready`:                                                                  1,
		`sentibench_model_info{model="fake"}`:                                               1,
		`sentibench_in_flight_requests`:                                                     0,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

func TestHistogramAndQuote(t *testing.T) {
	h := newHistogram([]float64{1, 2, 4})
	for _, v := range []float64{0.5, 1, 1.5, 4, 9} {
		h.observe(v)
	}
	var b strings.Builder
	h.write(&b, "x", `a="b"`)
	want := `x_bucket{a="b",le="1"} 2
x_bucket{a="b",le="2"} 3
x_bucket{a="b",le="4"} 4
x_bucket{a="b",le="+Inf"} 5
x_sum{a="b"} 16
x_count{a="b"} 5
`
	if b.String() != want {
		t.Errorf("histogram:\n%s\nwant:\n%s", b.String(), want)
	}
	if got := quote("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("quote = %s", got)
	}
	m := newMetrics()
	m.observeRequest("/v1/predict", 200, 3*time.Millisecond)
	var out strings.Builder
	if err := m.write(&out, gauges{}); err != nil {
		t.Fatal(err)
	}
	if err := checkExposition(out.String()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelRE  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

// checkExposition checks the rules of the Prometheus text format (0.0.4) that matter here:
// line syntax, one TYPE per family before its samples, families not interleaved, no series
// twice, and histograms with ascending cumulative buckets ending in +Inf equal to _count.
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
			if base, ok := strings.CutSuffix(name, s); ok && types[base] == "histogram" {
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
