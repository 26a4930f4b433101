#!/usr/bin/env python3
"""tokenize_file.py — turns a text file into a bmojo token file (docs/training.md, "Data files")
with a Hugging Face tokenizer (the `tokenizers` package; pip install tokenizers).

    tools/tokenize_file.py --tokenizer tokenizer.json IN.txt OUT.bin [--val-fraction 0.1 --val-out VAL.bin]

The whole text is encoded as one sequence (no special tokens added), written as uint16 when every id
of the vocabulary fits (vocabulary <= 65536), else uint32. With --val-fraction F the last F of the
tokens go to --val-out and the rest to OUT (a split at a token boundary, so no token is in both).
Files are written to a temporary name and renamed, so a reader never sees half a file.

The layout, little-endian: "BMOJOTOK", uint32 version 1, uint32 dtype (2 or 4: bytes per id),
uint64 count, then the ids.
"""
import argparse
import os
import struct
import sys
import tempfile
from array import array

MAGIC = b"BMOJOTOK"
VERSION = 1


def write_tokens(path, ids, dtype):
    """Writes ids (a sequence of ints) as a token file of dtype 2 or 4, atomically."""
    if not ids:
        raise ValueError("%s: no token ids to write" % path)
    arr = array("H" if dtype == 2 else "I", ids)
    if arr.itemsize != dtype:  # array's "I" is 4 bytes on every platform we know; be sure
        arr = array("L", ids) if array("L").itemsize == dtype else None
        if arr is None:
            raise RuntimeError("no %d-byte array type on this platform" % dtype)
    if sys.byteorder != "little":
        arr.byteswap()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<IIQ", VERSION, dtype, len(arr)))
            arr.tofile(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description="Tokenize a text file into a bmojo token file.")
    ap.add_argument("--tokenizer", required=True, help="a Hugging Face tokenizer.json")
    ap.add_argument("input", help="the text file (UTF-8)")
    ap.add_argument("output", help="the token file to write")
    ap.add_argument("--val-fraction", type=float, default=0.0,
                    help="the fraction of the tokens (at the end) to put in --val-out")
    ap.add_argument("--val-out", help="the validation token file")
    a = ap.parse_args(argv)
    if not 0.0 <= a.val_fraction < 1.0:
        ap.error("--val-fraction must be in [0, 1)")
    if a.val_fraction > 0 and not a.val_out:
        ap.error("--val-fraction needs --val-out")
    if a.val_out and a.val_fraction == 0:
        ap.error("--val-out needs --val-fraction > 0")

    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("tokenize_file.py: the Python package `tokenizers` is not installed "
              "(pip install tokenizers); it is needed to read %s" % a.tokenizer, file=sys.stderr)
        return 2

    try:
        tok = Tokenizer.from_file(a.tokenizer)
    except Exception as e:  # the package raises its own exception types
        print("tokenize_file.py: cannot load the tokenizer %s: %s" % (a.tokenizer, e), file=sys.stderr)
        return 1
    try:
        with open(a.input, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        print("tokenize_file.py: cannot read %s: %s" % (a.input, e), file=sys.stderr)
        return 1

    ids = tok.encode(text, add_special_tokens=False).ids
    vocab = tok.get_vocab_size(with_added_tokens=True)
    dtype = 2 if vocab <= 1 << 16 else 4
    n_val = int(len(ids) * a.val_fraction)
    train, val = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
    if not train or (a.val_out and not val):
        print("tokenize_file.py: %s gives %d tokens, too few to split with --val-fraction %g"
              % (a.input, len(ids), a.val_fraction), file=sys.stderr)
        return 1
    write_tokens(a.output, train, dtype)
    if a.val_out:
        write_tokens(a.val_out, val, dtype)
    print("%s: %d tokens (vocabulary %d, uint%d)%s" % (
        a.output, len(train), vocab, 8 * dtype,
        "; %s: %d tokens" % (a.val_out, len(val)) if a.val_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
