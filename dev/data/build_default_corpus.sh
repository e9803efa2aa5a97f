#!/usr/bin/env bash
# build_default_corpus.sh — rebuild packlm's embedded default corpus,
# data/fortunes_val_000000.bin and data/fortunes_train_000001.bin, from the
# Debian packages `fortunes` and `fortunes-min` (fortune-mod's cookie files,
# BSD licence: see data/README.md). One fortune = one document (fortune files
# separate them with lines holding a single "%"); the documents are shuffled
# with a fixed seed, the first 65536 tokens' worth become the val shard
# (--val-percent 100: the token cap alone ends it, as when the corpus was built).
#
# usage: dev/data/build_default_corpus.sh    (needs apt-get and dpkg-deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory build/tools/write_shards >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q fortunes fortunes-min 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
for deb in "$work"/*.deb; do
    echo "package: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)"
    dpkg-deb -x "$deb" "$work/root"
done
# the cookie files: skip the .dat indexes and the .u8 symbolic links
mapfile -t files < <(find "$work/root/usr/share/games/fortunes" -type f ! -name '*.dat' | sort)
[ ${#files[@]} -gt 0 ] || { echo "error: no fortune files found in the packages" >&2; exit 1; }
rm -f data/fortunes_*.bin
build/tools/write_shards -o data/fortunes --delimiter % --shuffle 1337 --val-percent 100 --val-tokens 65536 "${files[@]}"
ls -l data/fortunes_*.bin
sha256sum data/fortunes_*.bin
