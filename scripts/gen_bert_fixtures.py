#!/usr/bin/env python3
"""Writes the small, seeded, RANDOM encoder fixtures of nn/bert/testdata (tooling only):

  python3 scripts/gen_bert_fixtures.py [--shared ../shared]

- mini-bert/: a tiny BertModel (hidden 16, 2 layers, 2 heads, 64 positions) over a 1,000-token
  WordPiece vocabulary cut from bert-base-uncased's, saved as model.safetensors (F32) and, with
  torch.save, as pytorch_model.bin (F32, the state_dict() OrderedDict itself, as transformers
  wrote it), pytorch_model.fp16.bin (F16 weights) and
  pytorch_model.bf16.bin (BF16 weights, names with a "bert." prefix plus a head tensor the encoder
  ignores, and the int64 position_ids buffer old checkpoints carry); reference.json holds its
  outputs in float32 (and for the fp16/bf16 weights, computed from the rounded weights).
- mini-distilbert/: a tiny DistilBertModel (dim 16, 2 layers, 2 heads, 128 sinusoidal positions)
  over the same vocabulary, model.safetensors + reference.json.
- ../../../internal/torchbin/testdata/torch_views.bin + torch_views.json: a torch.save'd dict of tensors that share storages, with
  offsets and non-contiguous strides, for the pickle reader, with their values; torch_broadcast.bin:
  an expanded view far larger than its storage, which the reader must refuse.

reference.json: per text, the ids from transformers' tokenizer (truncation to the model's
maximum) and last_hidden_state; a padded batch (right padding, attention mask) with its
last_hidden_state at every position.
"""
import argparse
import json
import os
import re
import shutil

import numpy as np
import torch
import transformers
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "nn", "bert", "testdata")

TEXTS = [
    "This movie was absolutely wonderful, I loved it.",
    "A dull, boring mess of a film.",
    "Héllo wörld!! The acting is great but the story, frankly, was not; 10/10 would watch again?",
    "short",
    " ".join(["the film is good and the story is bad"] * 12),  # long: hits the 64/128 truncation
]


def mini_vocab(shared):
    with open(os.path.join(shared, "models", "bert-base-uncased-vocab", "vocab.txt"), encoding="utf-8") as f:
        full = [l.rstrip("\n") for l in f]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    vocab += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = [t for t in full[1996:] if re.fullmatch(r"[a-z]{2,}", t)]
    cont = [t for t in full if re.fullmatch(r"##[a-z]{2,}", t)]
    vocab += cont[:150]
    vocab += words[:1000 - len(vocab)]
    assert len(vocab) == len(set(vocab)) == 1000
    return vocab


def reference(model, tok, max_len):
    model.eval()
    out = {"texts": []}
    seqs = []
    with torch.no_grad():
        for text in TEXTS:
            ids = tok(text, truncation=True, max_length=max_len)["input_ids"]
            seqs.append(ids)
            h = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            out["texts"].append({"text": text, "input_ids": ids, "last_hidden_state": h.tolist()})
        T = max(len(s) for s in seqs)
        ids = torch.tensor([s + [0] * (T - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s in seqs])
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        out["padded_batch"] = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                               "last_hidden_state": h.tolist()}
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def mini_bert(vocab):
    d = os.path.join(OUT, "mini-bert")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    torch.manual_seed(1234)
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64, type_vocab_size=2,
                                  hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0, initializer_range=0.2)
    model = transformers.BertModel(cfg, add_pooling_layer=True)
    model.eval()
    cfg.save_pretrained(d)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    torch.save(model.state_dict(), os.path.join(d, "pytorch_model.bin"))  # OrderedDict with _metadata
    torch.save({k: v.half() for k, v in sd.items()}, os.path.join(d, "pytorch_model.fp16.bin"))
    bf = {"bert." + k: v.bfloat16() for k, v in sd.items()}
    bf["bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    bf["cls.predictions.bias"] = torch.zeros(len(vocab))
    torch.save(bf, os.path.join(d, "pytorch_model.bf16.bin"))
    tok = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    ref = {"_comment": "RANDOM seeded mini BERT; outputs of transformers %s, torch %s, fp32" % (
        transformers.__version__, torch.__version__)}
    ref.update(reference(model, tok, 64))
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        m2 = transformers.BertModel(cfg)
        m2.load_state_dict({k: v.to(dtype).float() for k, v in sd.items()})
        r = reference(m2, tok, 64)
        ref[name] = {"last_hidden_state_0": r["texts"][0]["last_hidden_state"]}
    write_json(os.path.join(d, "reference.json"), ref)


def mini_distilbert(vocab):
    d = os.path.join(OUT, "mini-distilbert")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    torch.manual_seed(4321)
    cfg = transformers.DistilBertConfig(vocab_size=len(vocab), dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                        max_position_embeddings=128, sinusoidal_pos_embds=True,
                                        activation="gelu", pad_token_id=0, initializer_range=0.2)
    model = transformers.DistilBertModel(cfg)
    model.eval()
    pos = model.embeddings.position_embeddings.weight.detach().numpy()
    assert abs(pos[3, 0] - np.sin(3.0)) < 1e-6 and abs(pos[3, 1] - np.cos(3.0)) < 1e-6, "positions not sinusoidal"
    cfg.save_pretrained(d)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "DistilBertTokenizer", "do_lower_case": True, "model_max_length": 128}, f)
    tok = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    ref = {"_comment": "RANDOM seeded mini DistilBERT (sinusoidal positions); outputs of transformers %s, "
                       "torch %s, fp32" % (transformers.__version__, torch.__version__)}
    ref.update(reference(model, tok, 128))
    write_json(os.path.join(d, "reference.json"), ref)


def torch_views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    t = {
        "base": base,
        "transposed": base.t(),  # same storage, strides (1, 6)
        "row_slice": base[1:3],  # same storage, offset 6
        "col_slice": base[:, 2:5],  # offset 2, strides (6, 1)
        "strided": base[::2, ::3],  # strides (12, 3)
        "half": (base * 3).half(),
        "bf16": (base / 3).bfloat16(),
        "f64": base.double()[2],
        "long": torch.tensor([[1, -2], [3, 1 << 40]]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(base[0].clone()),  # pickled with _rebuild_parameter
        "expanded": base[1].expand(3, 6),  # stride (0, 1): a view larger than its storage
    }
    out = os.path.join(HERE, "..", "internal", "torchbin", "testdata")
    os.makedirs(out, exist_ok=True)
    torch.save(t, os.path.join(out, "torch_views.bin"))
    write_json(os.path.join(out, "torch_views.json"), {
        k: {"shape": list(v.shape), "values": v.double().flatten().tolist()} for k, v in t.items()})
    # A view of 3e9 elements over a one-element storage: 1.5 KB that must not make a reader
    # allocate 12 GB.
    torch.save({"big": torch.zeros(1).expand(3_000_000_000)}, os.path.join(out, "torch_broadcast.bin"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    vocab = mini_vocab(args.shared)
    mini_bert(vocab)
    mini_distilbert(vocab)
    torch_views()
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f"{os.path.relpath(p, OUT)}: {os.path.getsize(p):,} bytes")


if __name__ == "__main__":
    main()
