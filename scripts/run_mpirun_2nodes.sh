#!/usr/bin/env bash
# run_mpirun_2nodes.sh — data-parallel training on two nodes of 8 GPUs each
# (16 ranks), launched by OpenMPI's mpirun with a hostfile.
#
# Assumptions:
#   - HOSTFILE (default scripts/hostfile) lists the two nodes, one per line,
#     each with its GPU count as slots, e.g.
#         node-a slots=8
#         node-b slots=8
#   - passwordless ssh from this node to both nodes; the same OpenMPI, NCCL
#     and CUDA on both;
#   - this repository (with train_gpt built) and the data sit at the same path
#     on both nodes (a shared filesystem, or copies); -o must be on a shared
#     filesystem to resume (-y 1): rank 0 writes the model file, every rank its
#     optimizer shard, and every rank reads the model file back;
#   - the nodes reach each other over the network NCCL picks (InfiniBand if
#     present, else TCP sockets); set NCCL_SOCKET_IFNAME / NCCL_IB_HCA to pin
#     an interface, and OMPI_MCA_btl_tcp_if_include for MPI's own traffic;
#   - rank r runs on node r / 8 and uses its local GPU r % 8.
# Extra arguments go to train_gpt, e.g.
#   HOSTFILE=my_hosts scripts/run_mpirun_2nodes.sh -e gpt2:d24 -b 16 -d 1048576 -z 1 -o log/d24
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTFILE=${HOSTFILE:-scripts/hostfile}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
[ -r "$HOSTFILE" ] || { echo "error: hostfile '$HOSTFILE' not found (set HOSTFILE; format: 'HOST slots=8' per line)" >&2; exit 1; }
[ -x ./train_gpt ] || { echo "error: ./train_gpt is not built (make train_gpt on every node)" >&2; exit 1; }
exec mpirun -np $((2 * GPUS_PER_NODE)) --hostfile "$HOSTFILE" --map-by ppr:"$GPUS_PER_NODE":node --bind-to none \
    -x PATH -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE=0 -x NCCL_DEBUG=${NCCL_DEBUG:-WARN} \
    ${NCCL_SOCKET_IFNAME:+-x NCCL_SOCKET_IFNAME=$NCCL_SOCKET_IFNAME} \
    ${MPIRUN_ARGS:-} ./train_gpt "$@"
