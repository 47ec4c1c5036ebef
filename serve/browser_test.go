package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

// TestBrowser drives the web page in headless Chromium over the DevTools protocol: it types a
// review, clicks Classify, and requires the label and probability the API gives for that text;
// then it clicks an example. It keeps screenshots: in $SENTIBENCH_ARTIFACTS when set, else in
// the test's temporary directory. It serves a small model trained on the spot, or the run in
// $SENTIBENCH_SERVE_RUN (for the README's screenshot, a run trained on IMDB). It skips when no
// Chromium is installed (set $SENTIBENCH_CHROMIUM to pick a binary).
func TestBrowser(t *testing.T) {
	chromium, ok := findChromium()
	if !ok {
		t.Skip("no chromium on PATH (apt-get install chromium, or set SENTIBENCH_CHROMIUM)")
	}
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	dir := os.Getenv("SENTIBENCH_SERVE_RUN")
	if dir == "" {
		dir = trainRun(t, "cnn")
	}
	_, base, stop := startRun(t, dir)
	artefacts := os.Getenv("SENTIBENCH_ARTIFACTS")
	if artefacts == "" {
		artefacts = t.TempDir()
	} else if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	browser := startChromium(t, ctx, chromium)
	page, err := browser.newPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, domain := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := page.call(ctx, domain, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := page.call(ctx, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 900, "height": 860, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": base + "/"}, nil); err != nil {
		t.Fatal(err)
	}
	// The page is ready when its script has run (it fills in the examples).
	if err := page.waitFor(ctx, `document.readyState === "complete" && document.querySelectorAll("#examples .chip").length === 5`); err != nil {
		t.Fatalf("the page did not come up (did its script run under the Content-Security-Policy?): %v", err)
	}

	// Type a review and click Classify.
	review := "A wonderful film: moving, funny and beautifully acted. I loved every minute of it."
	if err := page.click(ctx, "#review"); err != nil {
		t.Fatal(err)
	}
	if err := page.typeText(ctx, review); err != nil {
		t.Fatal(err)
	}
	var typed string
	if err := page.eval(ctx, `document.getElementById("review").value`, &typed); err != nil || typed != review {
		t.Fatalf("the text box holds %q (%v)", typed, err)
	}
	if err := page.click(ctx, "#classify"); err != nil {
		t.Fatal(err)
	}
	label, prob := waitResult(t, ctx, page)
	want := apiAnswer(t, base, review)
	if label != want.Label || !strings.Contains(prob, formatPercent(want.Probability)) {
		t.Errorf("the page shows %q, %q; the API says %q, %v", label, prob, want.Label, want.Probability)
	}
	var active []string
	page.eval(ctx, `[...document.querySelectorAll("#scale span.on")].map(e => e.textContent)`, &active)
	if !slices.Equal(active, []string{want.Label}) {
		t.Errorf("the scale highlights %q, want %q", active, want.Label)
	}
	saveScreenshot(t, ctx, page, filepath.Join(artefacts, "serve-page.png"))

	// Click an example: it fills the text box and classifies it.
	if err := page.eval(ctx, `document.body.dataset.state = "idle"`, nil); err != nil {
		t.Fatal(err)
	}
	if err := page.click(ctx, "#examples .chip:last-child"); err != nil {
		t.Fatal(err)
	}
	label, prob = waitResult(t, ctx, page)
	var example string
	page.eval(ctx, `document.getElementById("review").value`, &example)
	want = apiAnswer(t, base, example)
	if !strings.Contains(example, "Avoid it") || label != want.Label || !strings.Contains(prob, formatPercent(want.Probability)) {
		t.Errorf("example %q: the page shows %q, %q; the API says %q, %v", example, label, prob, want.Label, want.Probability)
	}
	saveScreenshot(t, ctx, page, filepath.Join(artefacts, "serve-page-example.png"))

	// The page had no script errors and no Content-Security-Policy violations.
	for _, ev := range browser.takeEvents("Runtime.exceptionThrown", "Log.entryAdded") {
		var p struct {
			Entry struct{ Level, Text string } `json:"entry"`
		}
		json.Unmarshal(ev.Params, &p)
		if ev.Method == "Runtime.exceptionThrown" || p.Entry.Level == "error" {
			t.Errorf("browser %s: %s %s", ev.Method, p.Entry.Text, ev.Params)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// waitResult waits for the page to show an answer and returns its label and probability text.
func waitResult(t *testing.T, ctx context.Context, page *cdpPage) (string, string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := page.waitFor(wctx, `document.body.dataset.state === "done" || document.body.dataset.state === "error"`); err != nil {
		t.Fatal(err)
	}
	// The bar grows to the probability (an animation of a third of a second).
	if err := page.waitFor(wctx, `document.body.dataset.state === "error" || Math.abs(document.getElementById("bar-fill").getBoundingClientRect().width -
		document.getElementById("bar").getBoundingClientRect().width * document.getElementById("bar").getAttribute("aria-valuenow") / 100) < 5`); err != nil {
		t.Fatal(err)
	}
	var res struct{ State, Label, Prob, Error string }
	if err := page.eval(ctx, `({State: document.body.dataset.state, Label: document.getElementById("label").textContent,
		Prob: document.getElementById("prob").textContent, Error: document.getElementById("error").textContent})`, &res); err != nil {
		t.Fatal(err)
	}
	if res.State != "done" {
		t.Fatalf("the page shows an error: %s", res.Error)
	}
	return res.Label, res.Prob
}

// apiAnswer asks the API directly.
func apiAnswer(t *testing.T, base, text string) Prediction {
	t.Helper()
	code, resp, raw := postTexts(t, base, text)
	if code != 200 {
		t.Fatalf("API: %d %s", code, raw)
	}
	p := resp.Predictions[0]
	if p.Label != train.SentimentLabel(p.Probability) {
		t.Fatalf("API label %q for %v", p.Label, p.Probability)
	}
	return p
}

// formatPercent formats a probability as the page does: (100 * p).toFixed(1) + "%".
func formatPercent(p float64) string { return strconv.FormatFloat(100*p, 'f', 1, 64) + "%" }

func saveScreenshot(t *testing.T, ctx context.Context, page *cdpPage, path string) {
	t.Helper()
	b, err := page.screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 900 || r.Dy() != 860 {
		t.Errorf("screenshot of %v, want 900x860", r)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
