package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

// trainClassRun trains a cnn of a second or two on written data of the given classes (each
// class has a word of its own, "word" + its name, among words the classes share), in the order
// labels names (--labels; none: the data's order), and returns its run directory.
func trainClassRun(t *testing.T, classes []string, labels ...string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("text,label\n")
	shared := []string{"film", "plot", "actor", "scene", "music", "story", "ending", "camera"}
	for i := range 30 {
		for k, c := range classes {
			var words []string
			for j := range 6 {
				words = append(words, shared[(i*7+j*3+k)%len(shared)])
			}
			words[(i+k)%len(words)] = "word" + c
			fmt.Fprintf(&b, "%s,%s\n", strings.Join(words, " "), c)
		}
	}
	path := filepath.Join(dir, "data.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := train.DefaultConfig("cnn")
	cfg.Data, cfg.RunDir, cfg.Labels = path, filepath.Join(dir, "run"), labels
	cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.Dropout = 20, 16, 0.01, 0
	cfg.VocabSize, cfg.EmbedDim, cfg.Filters, cfg.Threads = 100, 16, 8, 2
	if _, err := train.Run(context.Background(), cfg, train.Hooks{Log: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatalf("training on %q: %v", classes, err)
	}
	return cfg.RunDir
}

// TestServeClasses serves real 3- and 5-class runs, and a binary run of other classes than
// sentiment's, over HTTP: each answer names the predicted class (never a sentiment level),
// gives every class's probability by name in the run's order (the predictor's, called
// directly), and the model's classes; GET /v1/model says the classes and that the labels are no
// sentiment levels.
func TestServeClasses(t *testing.T) {
	for _, c := range []struct {
		name    string
		classes []string // as written in the data
		labels  []string // --labels
		order   []string // the run's classes
	}{
		{"3", []string{"sports", "politics", "science"}, nil, []string{"politics", "science", "sports"}},
		{"5", []string{"4", "2", "5", "1", "3"}, nil, []string{"1", "2", "3", "4", "5"}},
		{"ham-spam", []string{"spam", "ham"}, []string{"ham", "spam"}, []string{"ham", "spam"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			classes := c.classes
			p, base, stop := startRun(t, trainClassRun(t, classes, c.labels...))
			runClasses := p.Classes()
			if !slices.Equal(runClasses, c.order) {
				t.Fatalf("the run's classes %q, want %q", runClasses, c.order)
			}
			var texts []string
			for _, c := range classes {
				texts = append(texts, "film plot word"+c+" story")
			}
			want, err := p.Classify(texts)
			if err != nil {
				t.Fatal(err)
			}
			code, resp, raw := postTexts(t, base, texts...)
			if code != 200 || !slices.Equal(resp.Classes, runClasses) || len(resp.Predictions) != len(texts) {
				t.Fatalf("POST: %d %s", code, raw)
			}
			for i, got := range resp.Predictions {
				w := want[i]
				if got.Label != classes[i] || got.Class != classes[i] || got.Label != w.Label {
					t.Errorf("text of class %s: served label %q class %q, the predictor says %q", classes[i], got.Label, got.Class, w.Label)
				}
				// A K-class run's probability is the predicted class's; a binary run's, its second class's.
				wantProb := w.Probabilities[w.Class]
				if len(runClasses) == 2 {
					wantProb = w.Probabilities[1]
				}
				if !slices.Equal(got.Probabilities, w.ByClass(runClasses)) || got.Probability != wantProb {
					t.Errorf("text of class %s: served %+v, the predictor says %v", classes[i], got, w.Probabilities)
				}
			}
			// The probabilities are an object in the run's class order.
			var order []string
			for _, c := range runClasses {
				order = append(order, fmt.Sprintf("%q:", c))
			}
			if i := strings.Index(raw, `"probabilities":{`); i < 0 || !inOrder(raw[i:], order) {
				t.Errorf("POST answer %s: the probabilities are not in the order %q", raw, runClasses)
			}
			for _, level := range []string{"Negative", "Positive"} {
				if strings.Contains(raw, level) {
					t.Errorf("a %d-class answer speaks of sentiment: %s", len(classes), raw)
				}
			}

			code, _, b := call(t, "GET", base+"/v1/predict?text="+url.QueryEscape(texts[0]), "")
			var got PredictResponse
			if err := json.Unmarshal(b, &got); code != 200 || err != nil || got.Predictions[0].Label != classes[0] ||
				!slices.Equal(got.Predictions[0].Probabilities, want[0].ByClass(runClasses)) {
				t.Errorf("GET: %d %s", code, b)
			}

			code, _, b = call(t, "GET", base+"/v1/model", "")
			var info ModelInfo
			if err := json.Unmarshal(b, &info); code != 200 || err != nil || info.Model != "cnn" || !slices.Equal(info.Classes, runClasses) || info.SentimentLevels {
				t.Errorf("GET /v1/model: %d %s", code, b)
			}
			if err := stop(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// inOrder reports whether the parts occur in s in that order.
func inOrder(s string, parts []string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// TestBrowserClasses drives the web page over a 3-class run in headless Chromium: the page lays
// itself out for the model's classes (no sentiment bar or levels), and after Classify shows the
// API's label and every class's probability, the predicted class's row highlighted. It skips as
// TestBrowser does.
func TestBrowserClasses(t *testing.T) {
	chromium, ok := findChromium()
	if !ok {
		t.Skip("no chromium on PATH (apt-get install chromium, or set SENTIBENCH_CHROMIUM)")
	}
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	classes := []string{"sports", "politics", "science"}
	_, base, stop := startRun(t, trainClassRun(t, classes))
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
	if err := page.waitFor(ctx, `document.readyState === "complete" && document.querySelectorAll("#classes .name").length === 3`); err != nil {
		t.Fatalf("the page did not lay itself out for the model's 3 classes: %v", err)
	}
	var layout struct {
		Title     string
		Names     []string
		Sentiment bool
	}
	page.eval(ctx, `({Title: document.getElementById("title").textContent,
		Names: [...document.querySelectorAll("#classes .name")].map(e => e.textContent),
		Sentiment: document.getElementById("scale").offsetParent !== null || document.getElementById("bar").offsetParent !== null})`, &layout)
	if layout.Title != "Text classification" || !slices.Equal(layout.Names, []string{"politics", "science", "sports"}) || layout.Sentiment {
		t.Errorf("the page's layout for %q: %+v", classes, layout)
	}

	text := "film plot wordscience story"
	if err := page.click(ctx, "#review"); err != nil {
		t.Fatal(err)
	}
	if err := page.typeText(ctx, text); err != nil {
		t.Fatal(err)
	}
	if err := page.click(ctx, "#classify"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := page.waitFor(wctx, `document.body.dataset.state === "done" || document.body.dataset.state === "error"`); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		State, Label, Error string
		Pcts, On            []string
	}
	if err := page.eval(ctx, `({State: document.body.dataset.state, Label: document.getElementById("label").textContent,
		Error: document.getElementById("error").textContent,
		Pcts: [...document.querySelectorAll("#classes .pct")].map(e => e.textContent),
		On: [...document.querySelectorAll("#classes .name.on")].map(e => e.textContent)})`, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.State != "done" {
		t.Fatalf("the page shows an error: %s", shown.Error)
	}
	code, resp, raw := postTexts(t, base, text)
	if code != 200 {
		t.Fatalf("API: %d %s", code, raw)
	}
	want := resp.Predictions[0]
	var wantPcts []string
	for _, c := range want.Probabilities {
		wantPcts = append(wantPcts, formatPercent(c.Probability))
	}
	if shown.Label != want.Label || want.Label != "science" || !slices.Equal(shown.Pcts, wantPcts) || !slices.Equal(shown.On, []string{want.Class}) {
		t.Errorf("the page shows label %q, probabilities %q, highlighted %q; the API says %q, %q", shown.Label, shown.Pcts, shown.On, want.Label, wantPcts)
	}
	// The bars grow to the probabilities (an animation of a third of a second).
	if err := page.waitFor(wctx, `[...document.querySelectorAll("#classes .cfill")].every(f =>
		Math.abs(f.getBoundingClientRect().width - f.parentElement.getBoundingClientRect().width * parseFloat(f.style.width) / 100) < 2)`); err != nil {
		t.Error(err)
	}
	artefacts := os.Getenv("SENTIBENCH_ARTIFACTS")
	if artefacts == "" {
		artefacts = t.TempDir()
	} else if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, ctx, page, filepath.Join(artefacts, "serve-page-classes.png"))
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
