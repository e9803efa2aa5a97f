#!/usr/bin/env bash
# run_mpirun_8gpu.sh — data-parallel training on the 8 GPUs of one node, one
# process per GPU, launched by OpenMPI's mpirun.
#
# Assumptions:
#   - one node with 8 NVIDIA GPUs (override with NGPU=4 etc.); rank r uses the
#     GPU of its local rank;
#   - OpenMPI (mpirun) and NCCL are installed and train_gpt was built with
#     both (`make train_gpt` prints "NCCL: found" and "MPI: found");
#   - the data globs (-i/-j) name files this node can read;
#   - run as root? add --allow-run-as-root to MPIRUN_ARGS.
# NCCL_NVLS_ENABLE=0 keeps NVLink multicast (NVLS) off.
# Extra arguments go to train_gpt, e.g.
#   scripts/run_mpirun_8gpu.sh -e gpt2:d12 -b 16 -t 1024 -d 524288 -z 1 -o log/d12
set -euo pipefail
cd "$(dirname "$0")/.."
NGPU=${NGPU:-8}
[ -x ./train_gpt ] || make train_gpt
exec mpirun -np "$NGPU" --bind-to none --map-by slot \
    -x NCCL_NVLS_ENABLE=0 -x NCCL_DEBUG=${NCCL_DEBUG:-WARN} \
    ${MPIRUN_ARGS:-} ./train_gpt "$@"
