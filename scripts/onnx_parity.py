#!/usr/bin/env python3
"""onnx_parity.py -- checks a model exported by `sentibench export --format onnx` against
`sentibench predict --json`, with third-party tools: the ONNX checker (onnx.checker.check_model,
full_check=True) must accept the file, and ONNX Runtime must give every text's probability within
--tol of sentibench's: a binary model's "probability" output against predict's "probability", a
K-class model's "probabilities" (the softmax of its K logits) against predict's "probabilities",
class by class in the order of the sidecar's labels, and the class of its largest logit against
predict's "class".

Word models (cnn, lstm): the texts are tokenized here from the sidecar JSON alone (the
basic_english rules it states, its vocabulary, unknown and padding ids, max_tokens), so the
sidecar is checked too. The bigru head: the encoder's features come from --features (float32,
little-endian, each text's rows one after the other, lengths[i] rows of input_dim) and
--lengths (a JSON list), as sentibench's encoder computed them.

Each batch is padded past its longest text with 3 more positions of arbitrary ids (features),
and the first texts are run again alone, unpadded: padding must change nothing.

--bench N runs ONNX Runtime over the first N texts (tokenization included) and prints texts/s.

Needs: onnx, onnxruntime, numpy. Exit status 1 when a check fails.
"""
import argparse
import json
import re
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

# torchtext's basic_english, as the sidecar's tokenizer.steps state it.
_PATTERNS = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]]


def basic_english(line):
    line = line.lower()
    for pattern, repl in _PATTERNS:
        line = pattern.sub(repl, line)
    return line.split()


class WordInputs:
    def __init__(self, side, texts):
        tok = side["tokenizer"]
        if tok["kind"] != "basic_english":
            raise SystemExit(f"unknown tokenizer {tok['kind']!r}")
        index = {t: i for i, t in enumerate(tok["vocabulary"])}
        unk, self.pad, max_tokens = tok["unknown_id"], tok["padding_id"], tok["max_tokens"]
        self.vocab_size = len(tok["vocabulary"])
        self.seqs = []
        for text in texts:
            ids = [index.get(t, unk) for t in basic_english(text)]
            if max_tokens > 0:
                ids = ids[:max_tokens]
            if not ids:
                raise SystemExit(f"a text has no tokens: {text[:60]!r}")
            self.seqs.append(ids)

    def feed(self, idx, extra, rng):
        T = max(len(self.seqs[i]) for i in idx) + extra
        ids = rng.integers(0, self.vocab_size, size=(len(idx), T), dtype=np.int64)
        for r, i in enumerate(idx):
            ids[r, :len(self.seqs[i])] = self.seqs[i]
        lengths = np.array([len(self.seqs[i]) for i in idx], dtype=np.int64)
        return {"input_ids": ids, "lengths": lengths}


class FeatureInputs:
    def __init__(self, side, features_path, lengths_path, n):
        dim = side["model_config"]["input_dim"]
        with open(lengths_path) as f:
            self.lengths = json.load(f)
        flat = np.fromfile(features_path, dtype="<f4")
        if len(self.lengths) != n or flat.size != sum(self.lengths) * dim:
            raise SystemExit(f"{features_path}: {flat.size} values, {len(self.lengths)} lengths, for {n} texts of width {dim}")
        offsets = np.cumsum([0] + self.lengths)
        self.rows = [flat[offsets[i] * dim:offsets[i + 1] * dim].reshape(-1, dim) for i in range(n)]
        self.dim = dim

    def feed(self, idx, extra, rng):
        T = max(self.lengths[i] for i in idx) + extra
        x = rng.standard_normal((len(idx), T, self.dim)).astype(np.float32)
        for r, i in enumerate(idx):
            x[r, :self.lengths[i]] = self.rows[i]
        return {"features": x, "lengths": np.array([self.lengths[i] for i in idx], dtype=np.int64)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the .onnx file (its sidecar is MODEL.json)")
    ap.add_argument("--texts", required=True, help="one text per line")
    ap.add_argument("--predictions", help="sentibench predict --json output for the same texts")
    ap.add_argument("--features", help="bigru: the encoder's features (float32 little-endian)")
    ap.add_argument("--lengths", help="bigru: the texts' lengths in word pieces (JSON list)")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    ap.add_argument("--bench", type=int, default=0, help="time N texts instead of checking")
    ap.add_argument("--sort", action="store_true", help="--bench: batch the texts by length (longest first), so that a batch holds little padding")
    args = ap.parse_args()

    onnx.checker.check_model(args.model, full_check=True)
    with open(args.model + ".json") as f:
        side = json.load(f)
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.strip() for line in f if line.strip()]
    so = ort.SessionOptions()
    if args.threads > 0:
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        # No busy-waiting between ops: on a shared machine spinning threads steal the cores.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    # A binary model's output is the probability of class 1 (one column); a K-class model's,
    # every class's (K columns, in the order of the sidecar's labels).
    kclass = "probabilities" in side["outputs"]
    output = "probabilities" if kclass else "probability"

    if args.bench:
        texts = texts[:args.bench]
        t0 = time.perf_counter()
        inputs = WordInputs(side, texts)  # tokenization counts
        order = list(range(len(texts)))
        if args.sort:
            order.sort(key=lambda i: -len(inputs.seqs[i]))
        for s in range(0, len(texts), args.batch):
            sess.run([output], inputs.feed(order[s:s + args.batch], 0, rng))
        dt = time.perf_counter() - t0
        print(f"onnxruntime {ort.__version__}: {len(texts)} texts in {dt:.3f} s, {len(texts) / dt:.1f} texts/s "
              f"(batch {args.batch}, {args.threads or 'default'} threads, tokenization included, "
              f"{'batched by length' if args.sort else 'batched in input order'})")
        return 0

    if side["model"] == "bigru":
        inputs = FeatureInputs(side, args.features, args.lengths, len(texts))
    else:
        inputs = WordInputs(side, texts)
    labels = side["labels"]
    with open(args.predictions) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if len(records) != len(texts):
        raise SystemExit(f"{args.predictions}: {len(records)} predictions for {len(texts)} texts")
    if kclass:
        want = np.array([[r["probabilities"][label] for label in labels] for r in records])
        want_class = [r["class"] for r in records]
    else:
        want = np.array([[r["probability"]] for r in records])

    got = np.zeros(want.shape)
    logits = np.zeros(want.shape)
    for s in range(0, len(texts), args.batch):
        idx = list(range(s, min(len(texts), s + args.batch)))
        got[idx], logits[idx] = sess.run([output, "logits"], inputs.feed(idx, 3, rng))
    alone = np.array([sess.run([output], inputs.feed([i], 0, rng))[0][0] for i in range(min(20, len(texts)))])

    diff = np.abs(got - want).max(axis=1)
    diff_alone = np.abs(alone - got[:len(alone)])
    worst = int(np.argmax(diff))
    print(f"{side['model']}: {len(texts)} texts of {len(labels)} classes, max |onnxruntime - sentibench| = {diff.max():.3g} "
          f"(text {worst}: {got[worst]} vs {want[worst]}), padded vs alone {diff_alone.max():.3g}; "
          f"onnx {onnx.__version__} checker ok, onnxruntime {ort.__version__}")
    failed = diff.max() > args.tol or diff_alone.max() > args.tol or not np.all(np.isfinite(got))
    if kclass:
        if got.shape[1] != len(labels) or np.abs(got.sum(axis=1) - 1).max() > 1e-5:
            print(f"FAIL: {got.shape[1]} probabilities per text for {len(labels)} labels, or they do not sum to 1", file=sys.stderr)
            return 1
        # (a near tie, within what float32 arithmetic may reorder, is no disagreement)
        top2 = np.sort(logits, axis=1)[:, -2:]
        wrong = [i for i in range(len(texts))
                 if labels[int(np.argmax(logits[i]))] != want_class[i] and top2[i, 1] - top2[i, 0] > 1e-4]
        if wrong:
            print(f"FAIL: the class of the largest logit differs from sentibench's for texts {wrong[:10]}", file=sys.stderr)
            return 1
    if failed:
        print(f"FAIL: over the tolerance {args.tol}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
