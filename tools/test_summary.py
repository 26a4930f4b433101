#!/usr/bin/env python3
"""test_summary.py — sums the checks of meson test logs into the line "N passed, N failed".
Each test program ends with its own "N passed, N failed" line; a test that meson saw fail (crash,
timeout, non-zero exit) without reporting failed checks counts as one more failure."""
import json
import re
import sys

LINE = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def main():
    passed = failed = 0
    for path in sys.argv[1:]:
        try:
            with open(path, encoding="utf-8") as f:
                entries = [json.loads(line) for line in f if line.strip()]
        except OSError:
            print("missing test log %s" % path)
            failed += 1
            continue
        for e in entries:
            counts = LINE.findall(e.get("stdout", "") or "")
            p, fl = (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)
            ok = e.get("result") == "OK"
            if not ok and fl == 0:
                fl = 1
            if ok and not counts:
                p = 1
            passed += p
            failed += fl
            print("%-24s %-8s %d passed, %d failed" % (e.get("name", "?"), e.get("result", "?"), p, fl))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
