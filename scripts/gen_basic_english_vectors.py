#!/usr/bin/env python3
"""Writes data/testdata/basic_english.json: the reference tokenizer's output, for the Go tests.

The tokenizer is basic_english exactly as ../shared/bench/torch_ref.py defines it (copied below,
and checked against that file when it is found). The vector holds:
- "reviews": a few hundred real IMDB reviews, picked deterministically: every tricky kind the data
  contains (ASCII control bytes, C1 control code points, U+00A0, U+0085, tabs, capital I with dot
  above, upper-case <BR />, odd <br> forms, heavy quoting), the shortest review holding each
  distinct non-ASCII character, and a seeded sample of ordinary ones;
- "synthetic": hand-written edge cases (quotes inside <br />, final sigma, Unicode whitespace, ...);
- "lower": every code point whose str.lower() is not itself, with its lower-case form;
- "space": every code point for which str.isspace() is true;
- "corpus": for each real archive, the SHA-256 over all its reviews (in byte-wise order of
  split/label/file name) of "NAME\nTOKENS JOINED BY SPACES\n": the Go test tokenizes every review
  of both archives and compares;
- "sigma": Python's Final_Sigma classes of all code points, run-length coded: C = cased and not
  case-ignorable, I = case-ignorable, O = other, N = unassigned in Python's Unicode version.
Synthetic tokens are joined with single spaces (a token never holds whitespace, so this is
lossless); a review carries the count and SHA-256 of its tokens (joined with newlines), to keep the
file small.

Usage: python3 scripts/gen_basic_english_vectors.py [SHARED_DIR]   (default ../shared)
"""
import hashlib
import json
import os
import random
import re
import sys
import tarfile
import unicodedata

_BASIC_ENGLISH = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "),
    (r"\"", ""),
    (r"\.", " . "),
    (r"<br \/>", " "),
    (r",", " , "),
    (r"\(", " ( "),
    (r"\)", " ) "),
    (r"\!", " ! "),
    (r"\?", " ? "),
    (r"\;", " "),
    (r"\:", " "),
    (r"\s+", " "),
]]


def basic_english(line):
    line = line.lower()
    for pattern, repl in _BASIC_ENGLISH:
        line = pattern.sub(repl, line)
    return line.split()


def check_against_torch_ref(shared):
    """Makes sure the copy above is the reference's own rule set."""
    src = open(os.path.join(shared, "bench", "torch_ref.py")).read()
    start = src.index("_BASIC_ENGLISH = [")
    end = src.index("def basic_english", start)
    mine = open(__file__).read()
    s2 = mine.index("_BASIC_ENGLISH = [")
    e2 = mine.index("def basic_english", s2)
    if src[start:end].strip() != mine[s2:e2].strip():
        sys.exit("error: the rule set here differs from torch_ref.py's")


def read(paths):
    out = []
    for p in paths:
        with tarfile.open(p, "r|*") as tf:
            for m in tf:
                if m.isfile() and m.name.endswith(".txt"):
                    out.append((m.name.split("aclImdb/", 1)[1], tf.extractfile(m).read().decode("utf-8")))
    return out


SYNTHETIC = [
    "", " ", "\t\n", "<br />", "<BR />", "<Br />", "<br/>", "<br  />", "<br\t/>", '<br "/>', '<"br />',
    '<b"r" /">', "<br '/>", "<br./>", "<br;/>", "a<br />b", "a<br /><br />b", "<br <br />/>", "<<br />br />",
    "<br /", "<", "<b", "<br", "<br /x>", "don't", "'quoted'", '"quoted"', 'a"b', 'say "hi".', "...", "e.g.",
    "U.S.A.", "(x)", "((a))", "!?", "?!.", "a;b:c", "a;;b", ";:", "\x1c\x1d\x1e\x1fx\x1cy", "x\x85y", "x\xa0y",
    "x\u1680y", "x\u2000y\u200ay", "x\u2028y\u2029z", "x\u202fy\u205fz\u3000w", "x\u200by", "x\ufeffy",
    "\x08\x10", "a\r\nb", "tab\tsep", "İstanbul", "Iİi", "ΣΑΣ", "ΟΔΟΣ", "Σ", "aΣ", "aΣb", "a'Σ", "a.Σ",
    "a\u0301Σ", "Σ'", "AΣ'", "AΣ'B", "AΣ.", "AΣ\"", "AΣ\u0301", "1Σ", "ΣΣ", "ΑΣ ΣΑ", "KELVIN \u212a",
    "ǅ ǈ ǋ", "ẞ ß", "ΐ", "ﬀ", "ＡＢＣ", "\U0001D400", "Ⅻ", "ⓐⒶ", "\u10a0", "\U00010400", "Ꭰ", "\u0085\u0096\u0097",
    "It\u0092s \u0093great\u0094\u0085 really", "caf\u00e9 na\u00efve \u00c9T\u00c9", "\u00c0 LA MODE", "ﬁne",
    "Hello, World! (Test) 'yes'? no; maybe: ok.", "a,b,c", "1,000.50", "<br />\"<br />\"",
    "Mr. Smith's \"best\" film(s)!!!", "   leading and trailing   ", "x\u00a0\u00a0y", "x\x0b\x0cy",
]


def review_entry(name, text):
    """A review with its tokens' count and SHA-256 (of the tokens joined by newlines): the tokens
    themselves would double the file's size. The Go test prints its tokens on a mismatch."""
    toks = basic_english(text)
    digest = hashlib.sha256("\n".join(toks).encode("utf-8")).hexdigest()
    return {"name": name, "text": text, "n_tokens": len(toks), "tokens_sha256": digest}


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
    imdb = os.path.join(shared, "data", "imdb")
    check_against_torch_ref(shared)
    archives = ["aclImdb_v1_labelled.tar.gz", "aclImdb_v1_unsup.tar.gz"]
    corpus = {}
    reviews = []
    for a in archives:
        rs = read([os.path.join(imdb, a)])
        h = hashlib.sha256()
        for name, text in sorted(rs, key=lambda r: r[0].encode("utf-8")):
            h.update((name + "\n" + " ".join(basic_english(text)) + "\n").encode("utf-8"))
        corpus[a] = {"reviews": len(rs), "sha256": h.hexdigest()}
        reviews += rs
    by_name = dict(reviews)
    pick = {}

    def add(name):
        pick[name] = by_name[name]

    for name in ["train/neg/2133_4.txt", "train/pos/6745_8.txt"]:
        add(name)
    kinds = {
        "ctl": lambda t: any(ord(c) < 0x20 for c in t),
        "c1": lambda t: any(0x80 <= ord(c) < 0xA0 for c in t),
        "nbsp": lambda t: "\xa0" in t,
        "nel": lambda t: "\x85" in t,
        "tab": lambda t: "\t" in t,
        "idot": lambda t: "\u0130" in t,
        "brupper": lambda t: re.search(r"<br", t, re.I) is not None and re.search(r"<(BR|Br|bR)", t) is not None,
        "brodd": lambda t: re.search(r"<br(?! />)", t, re.I) is not None,
        "quotes": lambda t: t.count('"') >= 12,
        "lt": lambda t: re.search(r"<(?!br />)", t) is not None,
    }
    counts = {"ctl": 10, "c1": 20, "nbsp": 6, "nel": 12, "tab": 5, "idot": 1, "brupper": 3, "brodd": 6,
              "quotes": 6, "lt": 8}
    ordered = sorted(reviews, key=lambda r: (len(r[1]), r[0]))
    for kind, test in kinds.items():
        got = [name for name, text in ordered if test(text)][:counts[kind]]
        for name in got:
            add(name)
    # the shortest review holding each distinct non-ASCII character
    seen = set()
    for name, text in ordered:
        new = {c for c in text if ord(c) > 0x7F} - seen
        if new:
            seen |= new
            add(name)
    print(f"{len(pick)} reviews of the tricky kinds")
    rng = random.Random(1234)
    labelled = [r for r in reviews if "/unsup/" not in r[0] and len(r[1]) < 700]
    for name, _ in rng.sample(labelled, 80):
        add(name)

    lower = {}
    space = []
    runs = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            cls = "N"
        else:
            c = chr(cp)
            if c.lower() != c:
                lower[cp] = c.lower()
            if c.isspace():
                space.append(cp)
            if unicodedata.category(c) == "Cn":
                cls = "N"
            elif (c + "Σ").lower()[-1] == "ς":
                cls = "C"
            elif ("a" + c + "Σ").lower()[-1] == "ς":
                cls = "I"
            else:
                cls = "O"
        if not runs or runs[-1][1] != cls:
            runs.append([cp, cls])
    out = {
        "generator": "scripts/gen_basic_english_vectors.py",
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        "reviews": [review_entry(n, t) for n, t in sorted(pick.items())],
        "synthetic": [{"text": t, "tokens": " ".join(basic_english(t))} for t in SYNTHETIC],
        "lower": [[cp, l] for cp, l in sorted(lower.items())],
        "space": space,
        "corpus": corpus,
        "sigma": runs,
    }
    dest = os.path.join(os.path.dirname(__file__), "..", "data", "testdata", "basic_english.json")
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0, separators=(",", ":"))
        f.write("\n")
    print(f"{dest}: {len(out['reviews'])} reviews, {len(SYNTHETIC)} synthetic, {len(lower)} lower, "
          f"{len(runs)} sigma runs, {os.path.getsize(dest):,} bytes")


if __name__ == "__main__":
    main()
