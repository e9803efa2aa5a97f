#!/usr/bin/env bash
# build_linux_docs_corpus.sh — a real text corpus of ~34M GPT-2 tokens from
# Debian's linux-source package: every text file of the kernel's
# Documentation/ (~20M tokens) plus the core C sources kernel/ mm/ lib/
# security/ crypto/ block/ ipc/ init/ (~14M), one file per document,
# tokenized into llm.c shards by build/tools/write_shards in a seeded shuffled
# order (so the first, val, shard of 1M tokens is a random sample of the
# documents), and packed into one .tar.xz small enough to travel to the GPU
# machine.
#
# usage: dev/data/build_linux_docs_corpus.sh [OUTDIR] [linux-source-X.deb]
#   OUTDIR    default build/linux_docs; writes OUTDIR/linux_docs_{val,train}_*.bin
#             and OUTDIR.tar.xz (unpack with: tar -xJf OUTDIR.tar.xz -C "$(dirname OUTDIR)")
#   .deb      a downloaded linux-source-* package; default: apt-get download linux-source-6.12
# needs: apt-get (or the .deb), dpkg-deb, tar, xz, build/tools/write_shards (make tools)
set -euo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac

OUTDIR=${1:-build/linux_docs}
DEB=${2:-}
PACKAGE=linux-source-6.12
DIRS="Documentation kernel mm lib security crypto block ipc init"
SHARD_TOKENS=4000000
VAL_TOKENS=1000000
MIN_TOKENS=30000000
MAX_ARCHIVE_BYTES=$((48 * 1024 * 1024)) # leaves room in the 64 MiB that travels to the GPU machine
WRITE_SHARDS=${WRITE_SHARDS:-build/tools/write_shards}

die() { echo "build_linux_docs_corpus: $*" >&2; exit 1; }
[ -x "$WRITE_SHARDS" ] || die "$WRITE_SHARDS not found: run 'make tools' first"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -z "$DEB" ]; then
    (cd "$WORK" && apt-get download "$PACKAGE" >/dev/null) || die "apt-get download $PACKAGE failed"
    DEB=$(ls "$WORK"/"$PACKAGE"_*.deb)
fi
[ -f "$DEB" ] || die "$DEB: no such package file"
echo "source: $(basename "$DEB")"
dpkg-deb -x "$DEB" "$WORK/pkg"
TARBALL=$(ls "$WORK"/pkg/usr/src/linux-source-*.tar.xz 2>/dev/null | head -n 1)
[ -n "$TARBALL" ] || die "$DEB holds no usr/src/linux-source-*.tar.xz"
TOP=$(basename "$TARBALL" .tar.xz)
# shellcheck disable=SC2086
tar -xJf "$TARBALL" -C "$WORK" $(for d in $DIRS; do echo "$TOP/$d"; done)

# one document per text file; binary files and files of 1000 KiB or more are left out
# shellcheck disable=SC2086
(cd "$WORK/$TOP" && find $DIRS -type f -size -1000k -print0 | xargs -0 grep -lI -e '' | LC_ALL=C sort) \
    >"$WORK/files.txt"
mkdir -p "$WORK/docs"
tar -C "$WORK/$TOP" -cf - -T "$WORK/files.txt" | tar -C "$WORK/docs" -xf -
echo "documents: $(wc -l <"$WORK/files.txt") text files from $DIRS"

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
"$WRITE_SHARDS" -o "$OUTDIR/linux_docs" --shard-tokens "$SHARD_TOKENS" --val-tokens "$VAL_TOKENS" \
    --shuffle 1337 "$WORK/docs"
tokens=$(for f in "$OUTDIR"/linux_docs_*.bin; do od -An -t d4 -j 8 -N 4 "$f"; done | awk '{s += $1} END {print s}')
[ "$tokens" -ge "$MIN_TOKENS" ] || die "only $tokens tokens (want >= $MIN_TOKENS)"

tar -C "$(dirname "$OUTDIR")" -cf - "$(basename "$OUTDIR")" | xz -9 -T0 >"$OUTDIR.tar.xz"
bytes=$(stat -c %s "$OUTDIR.tar.xz")
[ "$bytes" -le "$MAX_ARCHIVE_BYTES" ] || die "$OUTDIR.tar.xz is $bytes bytes (want <= $MAX_ARCHIVE_BYTES)"
echo "corpus: $tokens tokens in $(ls "$OUTDIR"/linux_docs_*.bin | wc -l) shards under $OUTDIR;" \
    "$OUTDIR.tar.xz is $((bytes / 1024 / 1024)) MiB"
