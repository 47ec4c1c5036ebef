package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/serve"
	"github.com/sentibench/sentibench/train"
)

// sentimentLevels are the six labels of a binary sentiment run (train.SentimentLabel).
var sentimentLevels = []string{"Extremely Negative", "Negative", "Somewhat Negative", "Somewhat Positive", "Positive", "Extremely Positive"}

// predictJSON is predict --json's object for one text.
type predictJSON struct {
	Text          string                   `json:"text"`
	Model         string                   `json:"model"`
	Label         string                   `json:"label"`
	Probability   float64                  `json:"probability"`
	Class         string                   `json:"class"`
	Probabilities train.ClassProbabilities `json:"probabilities"`
}

// TestPredictServeClassesCLI trains 3- and 5-class runs (CSV and JSONL) and a binary run of two
// classes that are no sentiment (poor, good), and classifies a text of each class with `predict`
// (a header, then per text the label, every class's probability and the text), `predict --json`
// and `serve` over HTTP: the run's class names throughout, never a sentiment level.
func TestPredictServeClassesCLI(t *testing.T) {
	for _, c := range []struct {
		file    string
		written []string
		flags   []string
		classes []string // the run's
	}{
		{"three.csv", []string{"pos", "neg", "neutral"}, []string{"--labels", "neg,neutral,pos"}, []string{"neg", "neutral", "pos"}},
		{"five.jsonl", []string{"4", "2", "5", "1", "3"}, nil, []string{"1", "2", "3", "4", "5"}},
		{"good-poor.csv", []string{"good", "poor"}, []string{"--labels", "poor,good"}, []string{"poor", "good"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			dir := t.TempDir()
			runDir := filepath.Join(dir, "run")
			if _, errOut, err := run(t, classTrainArgs(writeClasses(t, dir, c.file, c.written, 40), runDir, c.flags...)...); err != nil {
				t.Fatalf("train: %v\n%s", err, errOut)
			}
			var texts []string
			for _, class := range c.classes {
				texts = append(texts, "film plot word"+class+" story")
			}

			out, errOut, err := run(t, append([]string{"predict", "--run", runDir}, texts...)...)
			if err != nil {
				t.Fatalf("predict: %v\n%s", err, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if want := "label\t" + strings.Join(c.classes, "\t") + "\ttext"; lines[0] != want || len(lines) != len(texts)+1 {
				t.Fatalf("predict printed:\n%s\nwant the header %q and a line per text", out, want)
			}
			for i, line := range lines[1:] {
				f := strings.Split(line, "\t")
				if len(f) != len(c.classes)+2 || f[0] != c.classes[i] || f[len(f)-1] != texts[i] {
					t.Errorf("text of class %s: line %q", c.classes[i], line)
					continue
				}
				var probs []float64
				for _, cell := range f[1 : len(f)-1] {
					p, err := strconv.ParseFloat(cell, 64)
					if err != nil || len(cell) != len("0.1234") {
						t.Errorf("line %q: probability %q", line, cell)
					}
					probs = append(probs, p)
				}
				// The label is the class of the largest probability, and they sum to 1 (to their 4 decimals).
				sum := 0.0
				for _, p := range probs {
					sum += p
				}
				if best := slices.Index(probs, slices.Max(probs)); c.classes[best] != f[0] || math.Abs(sum-1) > 1e-4*float64(len(probs)) {
					t.Errorf("line %q: label %s, probabilities %v", line, f[0], probs)
				}
			}
			for _, level := range sentimentLevels {
				if strings.Contains(out, level) {
					t.Errorf("predict speaks of sentiment for the classes %q:\n%s", c.classes, out)
				}
			}

			out, errOut, err = run(t, append([]string{"predict", "--run", runDir, "--json"}, texts...)...)
			if err != nil {
				t.Fatalf("predict --json: %v\n%s", err, errOut)
			}
			dec := json.NewDecoder(strings.NewReader(out))
			for i := range texts {
				var got predictJSON
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("predict --json: %v\n%s", err, out)
				}
				var names []string
				var sum float64
				for _, cp := range got.Probabilities {
					names = append(names, cp.Class)
					sum += cp.Probability
				}
				wantProb := got.Probabilities[i].Probability // the predicted class's
				if len(c.classes) == 2 {
					wantProb = got.Probabilities[1].Probability // a binary run's: its second class's
				}
				if got.Text != texts[i] || got.Model != "cnn" || got.Label != c.classes[i] || got.Class != c.classes[i] ||
					!slices.Equal(names, c.classes) || math.Abs(sum-1) > 1e-9 || got.Probability != wantProb {
					t.Errorf("text of class %s: %+v", c.classes[i], got)
				}
			}

			base := serveCLI(t, runDir)
			resp, err := http.Get(base + "/v1/model")
			if err != nil {
				t.Fatal(err)
			}
			var info serve.ModelInfo
			json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if !slices.Equal(info.Classes, c.classes) || info.SentimentLevels {
				t.Errorf("GET /v1/model: %+v", info)
			}
			body, _ := json.Marshal(serve.PredictRequest{Texts: texts})
			resp, err = http.Post(base+"/v1/predict", "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var answer serve.PredictResponse
			if err := json.Unmarshal(raw, &answer); err != nil || resp.StatusCode != 200 || !slices.Equal(answer.Classes, c.classes) {
				t.Fatalf("POST /v1/predict: %d %s (%v)", resp.StatusCode, raw, err)
			}
			for i, p := range answer.Predictions {
				if p.Label != c.classes[i] || p.Class != c.classes[i] || len(p.Probabilities) != len(c.classes) {
					t.Errorf("served for the text of class %s: %+v", c.classes[i], p)
				}
			}
		})
	}
}

// serveCLI runs `sentibench serve --run runDir` in the test's process on a free loopback port
// until the test ends, and returns its base URL once it is ready.
func serveCLI(t *testing.T, runDir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"serve", "--run", runDir, "--addr", addr, "--threads", "1"})
		done <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve was not ready in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPredictBinarySentiment: a binary IMDB run prints what predict always printed, per text
// the positive class's probability, its sentiment level and the text, with no header; --json
// has the fields it always had (text, model, probability: Predict's, label: its level) and the
// class and both classes' probabilities.
func TestPredictBinarySentiment(t *testing.T) {
	runDir := trainSmallRun(t)
	p, err := train.Load(runDir, train.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"A wonderful, moving film.", "Dull and far too long.", "good"}
	probs, err := p.Predict(texts)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, append([]string{"predict", "--run", runDir, "--threads", "1"}, texts...)...)
	if err != nil {
		t.Fatalf("predict: %v\n%s", err, errOut)
	}
	var want strings.Builder
	for i, text := range texts {
		fmt.Fprintf(&want, "%.4f\t%s\t%s\n", probs[i], train.SentimentLabel(probs[i]), text)
	}
	if out != want.String() {
		t.Errorf("predict printed:\n%s\nwant:\n%s", out, want.String())
	}
	out, errOut, err = run(t, append([]string{"predict", "--run", runDir, "--threads", "1", "--json"}, texts...)...)
	if err != nil {
		t.Fatalf("predict --json: %v\n%s", err, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for i, text := range texts {
		var got predictJSON
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		class := "neg"
		if probs[i] > 0.5 {
			class = "pos"
		}
		wantProbs := train.ClassProbabilities{{Class: "neg", Probability: 1 - probs[i]}, {Class: "pos", Probability: probs[i]}}
		if got.Text != text || got.Model != "cnn" || got.Probability != probs[i] || got.Label != train.SentimentLabel(probs[i]) ||
			got.Class != class || !slices.Equal(got.Probabilities, wantProbs) {
			t.Errorf("text %d: %+v; want probability %v, label %s, class %s", i, got, probs[i], train.SentimentLabel(probs[i]), class)
		}
	}
	if !regexp.MustCompile(`^\{"text":".*","model":"cnn","label":"[A-Za-z ]+","probability":[0-9.e-]+,"class":"(neg|pos)","probabilities":\{"neg":[0-9.e-]+,"pos":[0-9.e-]+\}\}$`).MatchString(strings.Split(out, "\n")[0]) {
		t.Errorf("predict --json's first line: %s", strings.Split(out, "\n")[0])
	}
}
