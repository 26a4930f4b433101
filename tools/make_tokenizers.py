#!/usr/bin/env python3
"""make_tokenizers.py — builds the tokenizers and goldens of bmojo's tokenizer tests with the
Hugging Face `tokenizers` package (pip install tokenizers), since none can be downloaded here:

    tools/make_tokenizers.py [--out tests/tokenizer] [--vocab 3000]
    tools/make_tokenizers.py --default configs/tokenizers/bytelevel-4k.json --vocab 4096

The second form writes only the byte-level tokenizer, the one the README's main command reads
(configs/bmojo-130m-text.yaml has its vocabulary of 4096).

Writes, under OUT:
  bytelevel/tokenizer.json  byte-level BPE as GPT-2 / GPT-NeoX (Mamba checkpoints) ship it: NFC
                            normalizer, ByteLevel pre-tokenizer (the GPT-2 regex), ByteLevel
                            decoder and post-processor, <|endoftext|> and <|padding|>; merges in the
                            legacy "a b" string form
  sentencepiece/tokenizer.json  SentencePiece-style BPE as Llama / Mistral ship it: the normalizer
                            Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte fallback
                            (<0x00>..<0xFF>), <unk> <s> </s>, a template adding <s>, the decoder
                            Replace + ByteFallback + Fuse + Strip; merges as [a, b] pairs
  metaspace/tokenizer.json  the same model as newer Llama conversions write it: no normalizer, the
                            Metaspace pre-tokenizer (prepend_scheme first, no split) and decoder
  <tokenizer>/<file>.ids          ids of corpus/<file> (its exact bytes; invalid UTF-8 sequences
                                  replaced by U+FFFD as Python's errors="replace" does), encoded
                                  with add_special_tokens=False, on one line separated by spaces
  <tokenizer>/<file>.special.ids  the same with the post-processor's special tokens
  <tokenizer>/<file>.decoded      decode(ids), UTF-8
The tokenizers are trained on the corpus files and tests/tokenizer/train.txt (the repository's
docs/*.md and README.md as of 2026-12-06, committed so that reruns agree); the outputs are
committed, so the tests need no Python.
"""
import argparse
import glob
import json
import os
import sys


def training_texts(root, corpus):
    """The corpus files and tests/tokenizer/train.txt (a committed snapshot of the repository's docs),
    so that a rerun gives the same tokenizers whatever the docs say now."""
    texts = []
    for p in sorted(glob.glob(os.path.join(corpus, "*"))) + [os.path.join(root, "tests", "tokenizer", "train.txt")]:
        with open(p, "rb") as f:
            texts.append(f.read().decode("utf-8", errors="replace"))
    return texts


def bytelevel(texts, vocab):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def sentencepiece(texts, vocab):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # trained on ▁-split words (so no merge crosses a word start), used as Llama / Mistral use it:
    # the normalizer makes the ▁s and no pre-tokenizer splits
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def metaspace(texts, vocab):
    """The SentencePiece-style model as newer Llama conversions ship it: no normalizer, the
    Metaspace pre-tokenizer (prepend_scheme "first", no split) and the Metaspace decoder."""
    from tokenizers import decoders, normalizers, pre_tokenizers
    tok = sentencepiece(texts, vocab)
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)])
    return tok


def save(tok, path, merges_form):
    """tokenizer.json with the merges in the given form ("string": "a b", "pair": ["a", "b"]); the
    byte tokens of the SentencePiece-style model are ordinary vocabulary entries, not special."""
    data = json.loads(tok.to_str())
    merges = data["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]
    data["model"]["merges"] = [" ".join(p) for p in pairs] if merges_form == "string" else pairs
    data["added_tokens"] = [t for t in data["added_tokens"] if not t["content"].startswith("<0x")]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    from tokenizers import Tokenizer
    return Tokenizer.from_file(path)  # the goldens come from the file as written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "tokenizer"))
    ap.add_argument("--vocab", type=int, default=3000)
    ap.add_argument("--default", help="write only the byte-level tokenizer to this path")
    args = ap.parse_args()
    try:
        import tokenizers
    except ImportError:
        sys.exit("make_tokenizers: the tokenizers package is missing (pip install tokenizers)")
    corpus = os.path.join(root, "tests", "tokenizer", "corpus")
    texts = training_texts(root, corpus)
    if args.default:
        os.makedirs(os.path.dirname(args.default), exist_ok=True)
        tok = save(bytelevel(texts, args.vocab), args.default, "string")
        if tok.get_vocab_size() != args.vocab:
            sys.exit(f"make_tokenizers: the corpus gave {tok.get_vocab_size()} tokens, not {args.vocab}")
        print(f"make_tokenizers: {args.default}: vocabulary {tok.get_vocab_size()}, tokenizers {tokenizers.__version__}")
        return
    for name, build, form in (("bytelevel", bytelevel, "string"), ("sentencepiece", sentencepiece, "pair"),
                              ("metaspace", metaspace, "pair")):
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        tok = save(build(texts, args.vocab), os.path.join(d, "tokenizer.json"), form)
        for p in sorted(glob.glob(os.path.join(corpus, "*"))):
            with open(p, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            base = os.path.join(d, os.path.basename(p))
            ids = tok.encode(text, add_special_tokens=False).ids
            with open(base + ".ids", "w") as f:
                f.write(" ".join(map(str, ids)) + "\n")
            with open(base + ".special.ids", "w") as f:
                f.write(" ".join(map(str, tok.encode(text, add_special_tokens=True).ids)) + "\n")
            with open(base + ".decoded", "wb") as f:
                f.write(tok.decode(ids, skip_special_tokens=False).encode("utf-8"))
        print(f"make_tokenizers: {name}: vocabulary {tok.get_vocab_size()}, tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
