/*
 * attention_schedule.cuh — the varlen schedule of the attention kernels: the
 * caller's workspace, and the tables of (segment, tile) entries that the
 * forward and backward grids walk, built once per micro-batch.
 *
 * Workspace of attention_workspace_bytes(N, NH, NKV, HD) bytes:
 *   tile counts   int[ATTN_PLAN_TABLES]
 *   item claims   int[2]: the sm90 forward's dynamic item order (the next
 *                 item to claim, blocks finished; zero between calls);
 *                 the two together padded to ATTN_WS_HEADER_BYTES (32)
 *   tile tables   table k: attention_max_tiles(N, attention_plan_rows[k])
 *                 AttentionTile entries, tiles of attention_plan_rows[k] rows
 *   delta         (NH, N) fp32, the backward's D = rowsum(dO * O)
 *
 * attention_plan(workspace, cu_seqlens, num_segments, max_seqlen, N, s)
 * scans cu_seqlens on the device (no host sync, no allocation) and writes
 * every table; it runs once whenever cu_seqlens changes (the model's batch
 * upload) and every attention_forward/attention_backward of that micro-batch
 * reads the tables through attention_table(). A table lists one entry per
 * (segment, tile), heaviest tile (most kv tiles to visit) first, so the long
 * tiles of a batch start early and do not form a tail, and a batch of many
 * short documents gives many small blocks rather than few blocks walking
 * long masked rows. The host only knows an upper bound on the number of
 * entries (the grid's x size); blocks past the real count exit at once.
 */
#ifndef PACKLM_ATTENTION_SCHEDULE_CUH
#define PACKLM_ATTENTION_SCHEDULE_CUH

#include "cuda_common.h"
#include "utils.h"

/* One scheduled tile: rows [start, min(start + tile rows, seg_end)) of the
   segment [seg_start, seg_end). 16 bytes, aligned: a kernel reads an entry
   with one load. */
struct alignas(16) AttentionTile {
    int start, seg_start, seg_end, unused; /* unused: pads the entry to 16 bytes */
};

/* Tile heights that attention_plan builds a table for: 64 and 128 rows for
   the kernels' query tiles, 16 and 32 (and 64) tokens for the sm90 forward's
   packed GQA tiles (128 rows = 128 / G tokens x G query heads). */
#define ATTN_PLAN_TABLES 4
static const int attention_plan_rows[ATTN_PLAN_TABLES] = {16, 32, 64, 128};

/* The workspace, split. */
struct AttentionWorkspace {
    int *tile_count;                         /* [ATTN_PLAN_TABLES] */
    int *item_claims;                        /* [2]: next item to claim, blocks finished (sm90 forward) */
    AttentionTile *tiles[ATTN_PLAN_TABLES]; /* table k: attention_max_tiles(N, attention_plan_rows[k]) entries */
    float *delta;                            /* (NH, N) */
};

/* Entries of a table of tile_rows-row tiles: a segment of L tokens has
   ceil(L / tile_rows) <= L / tile_rows + 1 tiles, so at most one per
   tile_rows tokens plus one per segment (at most N segments). */
static inline size_t attention_max_tiles(int N, int tile_rows)
{
    return (size_t)N + CEIL_DIV((size_t)N, (size_t)tile_rows);
}

/* Bytes of all the tile tables. */
static inline size_t attention_tables_bytes(int N)
{
    size_t bytes = 0;
    for (int k = 0; k < ATTN_PLAN_TABLES; k++)
        bytes += attention_max_tiles(N, attention_plan_rows[k]) * sizeof(AttentionTile);
    return bytes;
}

/* the header: the tile counts, then the two item claims, padded to a multiple of 16 bytes (the
   tile tables after it hold 16-byte entries) */
#define ATTN_WS_HEADER_BYTES 32
static_assert((ATTN_PLAN_TABLES + 2) * sizeof(int) <= ATTN_WS_HEADER_BYTES, "attention workspace header too small");

static size_t attention_workspace_bytes(int N, int NH, int NKV, int HD)
{
    (void)NKV;
    (void)HD;
    return ATTN_WS_HEADER_BYTES + attention_tables_bytes(N) + (size_t)NH * N * sizeof(float);
}

static inline AttentionWorkspace attention_workspace_split(void *workspace, int N)
{
    AttentionWorkspace ws;
    char *p = (char *)workspace;
    ws.tile_count = (int *)p;
    ws.item_claims = ws.tile_count + ATTN_PLAN_TABLES;
    p += ATTN_WS_HEADER_BYTES;
    for (int k = 0; k < ATTN_PLAN_TABLES; k++) {
        ws.tiles[k] = (AttentionTile *)p;
        p += attention_max_tiles(N, attention_plan_rows[k]) * sizeof(AttentionTile);
    }
    ws.delta = (float *)p;
    return ws;
}

/* ----------------------------------------------------- the schedule kernel */

/* Exclusive prefix sum over the block (blockDim.x = 1024); *total gets the sum. */
__device__ __forceinline__ int block_exclusive_scan(int x, int *total)
{
    __shared__ int warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int incl = x;
    for (int off = 1; off < 32; off *= 2) {
        int y = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += y;
    }
    __syncthreads(); /* warp_sums may still be read by a previous call */
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        int w = warp_sums[lane];
        for (int off = 1; off < 32; off *= 2) {
            int y = __shfl_up_sync(0xffffffffu, w, off);
            if (lane >= off) w += y;
        }
        warp_sums[lane] = w; /* inclusive over warps */
    }
    __syncthreads();
    *total = warp_sums[31];
    return incl - x + (warp > 0 ? warp_sums[warp - 1] : 0);
}

/* One block of 1024 threads. Orders tiles by their kv-tile count (tile index
   inside its segment + 1), heaviest first, with a counting sort over
   num_buckets shared-memory counters (tile indices past the last bucket share
   it). Writes the tiles and their count. */
__global__ void __launch_bounds__(1024) attention_schedule_kernel(AttentionTile *tiles, int *tile_count,
                                                                  const int *cu_seqlens, int num_segments,
                                                                  int tile_rows, int num_buckets,
                                                                  unsigned grid_tiles)
{
    extern __shared__ int bucket_next[]; /* num_buckets: next free slot of each bucket */
    for (int b = threadIdx.x; b < num_buckets; b += blockDim.x) bucket_next[b] = 0;
    __syncthreads();
    /* pass 1: bucket sizes (bucket b = tiles whose index in their segment is b, clamped) */
    for (int s = threadIdx.x; s < num_segments; s += blockDim.x) {
        const int len = cu_seqlens[s + 1] - cu_seqlens[s];
        const int n = len > 0 ? CEIL_DIV(len, tile_rows) : 0;
        for (int t = 0; t < n; t++) atomicAdd(&bucket_next[min(t, num_buckets - 1)], 1);
    }
    __syncthreads();
    /* bucket offsets, heaviest bucket first: reverse exclusive scan */
    int carry = 0;
    for (int b0 = 0; b0 < num_buckets; b0 += blockDim.x) {
        const int rb = num_buckets - 1 - (b0 + (int)threadIdx.x); /* bucket handled by this thread */
        const int size = rb >= 0 ? bucket_next[rb] : 0;
        int chunk_total;
        const int offset = block_exclusive_scan(size, &chunk_total);
        if (rb >= 0) bucket_next[rb] = carry + offset;
        carry += chunk_total;
    }
    if (threadIdx.x == 0) {
        *tile_count = carry;
        if ((unsigned)carry > grid_tiles) { /* max_seqlen below the longest segment: fail loudly */
            printf("attention: %d tiles but the grid has %u (max_seqlen smaller than the longest segment?)\n",
                   carry, grid_tiles);
            __trap();
        }
    }
    __syncthreads();
    /* pass 2: scatter (order inside a bucket does not affect any result) */
    for (int s = threadIdx.x; s < num_segments; s += blockDim.x) {
        const int seg_start = cu_seqlens[s], seg_end = cu_seqlens[s + 1];
        const int n = seg_end > seg_start ? CEIL_DIV(seg_end - seg_start, tile_rows) : 0;
        for (int t = 0; t < n; t++) {
            const int slot = atomicAdd(&bucket_next[min(t, num_buckets - 1)], 1);
            AttentionTile tile = {seg_start + t * tile_rows, seg_start, seg_end, 0};
            tiles[slot] = tile;
        }
    }
}

/* Buckets for the schedule sort: one per possible tile index, capped so the
   counters fit in 32 KB of shared memory (longer segments share the last). */
static inline int attention_schedule_buckets(int max_seqlen, int tile_rows)
{
    const int wanted = CEIL_DIV(max_seqlen, tile_rows);
    return wanted < 8192 ? wanted : 8192;
}

/* Upper bound on the number of tiles: the grid's x size. */
static inline unsigned attention_grid_tiles(int num_segments, int max_seqlen, int N, int tile_rows)
{
    const size_t by_tokens = (size_t)num_segments + CEIL_DIV((size_t)N, (size_t)tile_rows);
    const size_t by_longest = (size_t)num_segments * CEIL_DIV((size_t)max_seqlen, (size_t)tile_rows);
    const size_t bound = by_tokens < by_longest ? by_tokens : by_longest;
    const size_t table = attention_max_tiles(N, tile_rows);
    return (unsigned)(bound < table ? bound : table);
}

/* -------------------------------------------------------- plan and lookup */

/* What a workspace was last planned for, so that a forward or backward whose
   micro-batch was never planned fails loudly instead of reading stale
   tables (a few workspaces per process: a model, a test's problems). */
struct AttentionPlanRecord {
    const void *workspace;
    const int *cu_seqlens;
    int num_segments, max_seqlen, N;
};
#define ATTN_PLAN_RECORDS 8
static AttentionPlanRecord attention_plan_records[ATTN_PLAN_RECORDS];

static void attention_plan(void *workspace, const int *cu_seqlens, int num_segments, int max_seqlen, int N,
                           cudaStream_t s)
{
    if (N <= 0 || num_segments <= 0) return;
    if (max_seqlen < 1 || max_seqlen > N) die("attention_plan: max_seqlen %d outside [1, N = %d]", max_seqlen, N);
    const AttentionWorkspace ws = attention_workspace_split(workspace, N);
    /* the counters start at zero; each forward that uses them leaves them at zero */
    cudaCheck(cudaMemsetAsync(ws.item_claims, 0, 2 * sizeof(int), s));
    for (int k = 0; k < ATTN_PLAN_TABLES; k++) {
        const int rows = attention_plan_rows[k], buckets = attention_schedule_buckets(max_seqlen, rows);
        attention_schedule_kernel<<<1, 1024, buckets * sizeof(int), s>>>(
            ws.tiles[k], ws.tile_count + k, cu_seqlens, num_segments, rows, buckets,
            attention_grid_tiles(num_segments, max_seqlen, N, rows));
        cudaCheckLaunch();
    }
    int slot = -1; /* this workspace's record, else a free one, else the first */
    for (int i = 0; i < ATTN_PLAN_RECORDS; i++)
        if (attention_plan_records[i].workspace == workspace) slot = i;
    for (int i = 0; slot < 0 && i < ATTN_PLAN_RECORDS; i++)
        if (!attention_plan_records[i].workspace) slot = i;
    if (slot < 0) slot = 0;
    attention_plan_records[slot] = {workspace, cu_seqlens, num_segments, max_seqlen, N};
}

/* The planned table of `tile_rows`-row tiles and the grid's x size for it. */
struct AttentionTable {
    const AttentionTile *tiles;
    const int *count;
    int *item_claims; /* the workspace's item counters (AttentionWorkspace) */
    unsigned grid_tiles;
};

static AttentionTable attention_table(void *workspace, int tile_rows, const int *cu_seqlens, int num_segments,
                                      int max_seqlen, int N)
{
    int planned = 0;
    for (int i = 0; i < ATTN_PLAN_RECORDS; i++) {
        const AttentionPlanRecord &r = attention_plan_records[i];
        planned |= r.workspace == workspace && r.cu_seqlens == cu_seqlens && r.num_segments == num_segments &&
                   r.max_seqlen == max_seqlen && r.N == N;
    }
    if (!planned)
        die("attention: this micro-batch (N = %d, %d segments, max_seqlen %d) was not planned: call "
            "attention_plan on the workspace after uploading cu_seqlens",
            N, num_segments, max_seqlen);
    for (int k = 0; k < ATTN_PLAN_TABLES; k++) {
        if (attention_plan_rows[k] != tile_rows) continue;
        const AttentionWorkspace ws = attention_workspace_split(workspace, N);
        return {ws.tiles[k], ws.tile_count + k, ws.item_claims,
                attention_grid_tiles(num_segments, max_seqlen, N, tile_rows)};
    }
    die("attention: no planned table of %d-row tiles (see attention_plan_rows)", tile_rows);
    return {};
}

#endif /* PACKLM_ATTENTION_SCHEDULE_CUH */
