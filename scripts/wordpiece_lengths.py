#!/usr/bin/env python3
"""Word-piece counts of IMDB's 25,000 train reviews (archive order), as the bigru's encoder sees
them: bert-base-uncased's tokenizer, [CLS] + pieces + [SEP], truncated to 512. One count a line on
stdout. For the bigru head's timing (scripts/gpu-bundle.sh).

  python3 scripts/wordpiece_lengths.py ../shared/data/imdb/aclImdb_v1_labelled.tar.gz \\
      ../shared/models/bert-base-uncased-vocab/tokenizer.json > lengths.txt
"""
import re
import sys
import tarfile

from tokenizers import Tokenizer

member = re.compile(r"(?:^|/)train/(pos|neg)/([^/]+\.txt)$")
texts = []
with tarfile.open(sys.argv[1], mode="r|*") as tf:
    for m in tf:
        if m.isfile() and member.search(m.name):
            texts.append(tf.extractfile(m).read().decode("utf-8"))
tok = Tokenizer.from_file(sys.argv[2])
tok.no_padding()
tok.enable_truncation(512)
for enc in tok.encode_batch(texts):
    print(len(enc.ids))
