#!/usr/bin/env python3
"""gather_text_corpus.py — collect varied real text from a Debian system's own files.

Used to compare our tokenizer with tiktoken on text it was not written
against (dev/data/tiktoken_compare.py). Sources: man pages in every language
installed under /usr/share/man (English and e.g. de, fr, ja, ko, ru, zh_CN,
uk, ...), and plain-text documentation under /usr/share/doc. Files that are
not valid UTF-8 are skipped (tiktoken takes str, not bytes). Writes one file
per group, OUT_DIR/<group>.txt, each at most --group-mb megabytes, files
joined with a blank line.

usage: gather_text_corpus.py OUT_DIR [--group-mb 1.5]
"""
import argparse
import gzip
import os
import sys


def read_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
        return None
    return text if "\0" not in text else None


def groups():
    """(group name, list of files) for each source."""
    man = "/usr/share/man"
    for entry in sorted(os.listdir(man)):
        root = os.path.join(man, entry)
        if os.path.isdir(root):
            name = "man_en" if entry.startswith("man") else "man_" + entry
            yield name, [os.path.join(d, f) for d, _, fs in sorted(os.walk(root)) for f in sorted(fs)]
    doc = "/usr/share/doc"
    keep = (".txt", ".md", ".rst", "README", "NEWS", "changelog.gz", "changelog.Debian.gz", "copyright")
    yield "doc", [os.path.join(d, f) for d, _, fs in sorted(os.walk(doc)) for f in sorted(fs) if f.endswith(keep)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--group-mb", type=float, default=1.5)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    budget = int(args.group_mb * 1e6)
    totals = {}
    for name, files in groups():
        parts, size = totals.setdefault(name, ([], 0))
        for path in files:
            if size >= budget:
                break
            text = read_text(path)
            if text:
                parts.append(text)
                size += len(text.encode())
        totals[name] = (parts, size)
    for name, (parts, size) in totals.items():
        if size == 0:
            continue
        with open(os.path.join(args.out_dir, name + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n\n".join(parts))
        print(f"{name:10s} {size / 1e6:6.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
