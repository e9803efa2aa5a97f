#!/usr/bin/env bash
# run_single_gpu.sh — train on one GPU, no MPI, no NCCL.
#
# Assumptions:
#   - run from the repository root on a machine with at least one NVIDIA GPU;
#     the first visible GPU is used (set CUDA_VISIBLE_DEVICES to pick another);
#   - train_gpt is built (`make train_gpt`; this script builds it if missing);
#   - the data: the embedded corpus data/fortunes_*.bin unless -i/-j are given.
# Any extra arguments are passed to train_gpt, e.g.
#   scripts/run_single_gpu.sh -e gpt2:d12 -b 16 -t 1024 -x 1000 -o log/d12
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x ./train_gpt ] || make train_gpt
exec ./train_gpt "$@"
