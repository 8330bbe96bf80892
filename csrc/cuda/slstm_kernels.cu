// Fused sLSTM forward and backward over a whole sequence (kernel-only translation unit; see slstm_kernels.h).
//
// Two layouts. On compute capability 9.0 and above, thread-block clusters split each head's units across up to
// 8 blocks that keep their slice of R on chip and exchange h (backward: the pre-activation gradients) through
// distributed shared memory every step (the cluster kernels below). Elsewhere, and where slstm_use_clusters
// (false) asks for it: heads never mix (R is block-diagonal), so one thread block owns one head and a tile of up
// to kTile batch rows for all T steps: thread j of the 4 * Dh threads computes gate row j (gate g = j / Dh,
// unit e = j % Dh) of pre = gx + R h_{t-1} (eqs 31-34) for every row of the tile; then the block applies the
// stabilised cell (eqs 46-50) unit by unit, keeping c, n, m in registers between steps. R is read from shared
// memory when this head's block of it fits there, else through the read-only cache.
#include <cooperative_groups.h>
#include <utility>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "slstm_kernels.h"

namespace xseq {
namespace {

constexpr int kTile = 8;                        // batch rows per block
constexpr int kUnits = (kTile + 3) / 4;         // units per thread: kTile * Dh units over 4 * Dh threads

struct Cell {
  float i, f, z, o, fac, c, n, m, h;
};

// One unit: pre-activations and the previous (c, n, m) -> gates and the new state.
__device__ __forceinline__ Cell cell(float itil, float ftil, float ztil, float otil, float c, float n, float m,
                                     bool exp_forget) {
  Cell r;
  float logf;
  if (exp_forget) {
    logf = ftil;
    r.fac = 1.f;
  } else {  // d log sigmoid(f) / df = sigmoid(-f)
    const float e = expf(-fabsf(ftil));
    logf = fminf(ftil, 0.f) - log1pf(e);  // log_sigmoid, sharing e with the derivative
    r.fac = (ftil >= 0.f ? e : 1.f) / (1.f + e);
  }
  const float a = logf + m;
  if (a >= itil) {  // eq 46: the larger exponent becomes the stabiliser, so one gate is exactly 1
    r.m = a;
    r.f = 1.f;
    r.i = expf(itil - a);  // eq 47
  } else {
    r.m = itil;
    r.i = 1.f;
    r.f = expf(a - itil);  // eq 48 (m = -inf in a fresh state gives f = 0)
  }
  r.z = tanhf(ztil);                  // eq 4
  r.o = 1.f / (1.f + expf(-otil));    // eq 7
  r.c = r.f * c + r.i * r.z;          // eq 49
  r.n = r.f * n + r.i;                // eq 50
  r.h = r.o * (r.c / r.n);            // eq 3
  return r;
}

// What the backward pass needs of step t for one (row, unit) at offset `so` of a (B, H, Dh) slab: the gates and
// d log f / d ftil, the h, c and n before the step, and after the last step c and n.
__device__ __forceinline__ void save_step(float* gates, float* cs, float* ns, float* hprev, int t, int T_,
                                          size_t BHD, size_t so, float h_prev, float c_prev, float n_prev,
                                          const Cell& r) {
  hprev[t * BHD + so] = h_prev;
  cs[t * BHD + so] = c_prev;
  ns[t * BHD + so] = n_prev;
  float* gt = gates + (size_t)t * 5 * BHD + so;
  gt[0] = r.i;
  gt[BHD] = r.f;
  gt[2 * BHD] = r.z;
  gt[3 * BHD] = r.o;
  gt[4 * BHD] = r.fac;
  if (t == T_ - 1) {
    cs[(size_t)T_ * BHD + so] = r.c;
    ns[(size_t)T_ * BHD + so] = r.n;
  }
}

// This head's block of a (4, H, Dh, Dh) matrix M: staged into shared memory `dst` when `shared` (read at
// dst[g * Dh * Dh + row * Dh + col]), else read in place. Returns the base pointer and sets the gate stride.
template <typename T>
__device__ __forceinline__ const T* head_block(const T* M, T* dst, int H, int hh, int Dh, bool shared,
                                              size_t* gstride) {
  if (!shared) {
    *gstride = (size_t)H * Dh * Dh;
    return M + (size_t)hh * Dh * Dh;
  }
  for (int k = threadIdx.x; k < 4 * Dh * Dh; k += blockDim.x) {
    const int g = k / (Dh * Dh), rest = k % (Dh * Dh);
    dst[k] = M[((size_t)g * H + hh) * Dh * Dh + rest];
  }
  *gstride = (size_t)Dh * Dh;
  return dst;  // the caller's __syncthreads() publishes the copy
}

// Offset of (row b, head hh, unit e) in a (B, H, Dh) slab.
__device__ __forceinline__ size_t unit_offset(int b, int hh, int e, int H, int Dh) {
  return ((size_t)b * H + hh) * Dh + e;
}

template <typename T>
__global__ void __launch_bounds__(4 * kSLSTMMaxHeadSize)
slstm_forward_kernel(const T* __restrict__ gx, const T* __restrict__ R, float* __restrict__ c,
                     float* __restrict__ n, float* __restrict__ m, float* __restrict__ h, T* __restrict__ hout,
                     float* __restrict__ gates, float* __restrict__ cs, float* __restrict__ ns,
                     float* __restrict__ hprev, int B, int T_, int H, int Dh, bool exp_forget, bool keep,
                     bool r_shared) {
  XSEQ_DYNAMIC_SMEM(unsigned char, smem);
  const int hh = blockIdx.x;
  const int b0 = blockIdx.y * kTile;
  const int nb = min(kTile, B - b0);
  const int G = 4 * Dh;
  const int j = threadIdx.x;  // gate row
  const int g = j / Dh, e = j % Dh;
  float* hs = reinterpret_cast<float*>(smem);  // (kTile, Dh): h_{t-1} of the tile
  float* pre = hs + kTile * Dh;                // (kTile, 4 Dh): R h_{t-1} + gx
  T* Rs = reinterpret_cast<T*>(pre + kTile * G);
  size_t gstride;
  const T* Rh = head_block(R, Rs, H, hh, Dh, r_shared, &gstride);  // R[g, hh, d, e] at Rh[g * gstride + d * Dh + e]
  const size_t HD = (size_t)H * Dh;
  // this thread's units u = j + k * G of the tile: row u / Dh, unit u % Dh
  float rc[kUnits], rn[kUnits], rm[kUnits];
#pragma unroll
  for (int k = 0; k < kUnits; ++k) {
    const int u = j + k * G;
    if (u < nb * Dh) {
      const size_t s = unit_offset(b0 + u / Dh, hh, u % Dh, H, Dh);
      rc[k] = c[s];
      rn[k] = n[s];
      rm[k] = m[s];
      hs[u] = h[s];
    }
  }
  __syncthreads();
  for (int t = 0; t < T_; ++t) {
    // pre[b, j] = gx[b, t, g, hh, e] + sum_d h_{t-1}[b, d] R[g, hh, d, e]   (eqs 31-34)
    float acc[kTile];
#pragma unroll
    for (int b = 0; b < kTile; ++b) acc[b] = 0.f;
    const T* Rg = Rh + g * gstride + e;
    for (int d = 0; d < Dh; ++d) {
      const float r = to_float(Rg[(size_t)d * Dh]);
#pragma unroll
      for (int b = 0; b < kTile; ++b) acc[b] += hs[b * Dh + d] * r;  // rows past nb hold garbage, never used
    }
    for (int b = 0; b < nb; ++b) {
      const size_t gi = ((((size_t)(b0 + b) * T_ + t) * 4 + g) * H + hh) * Dh + e;
      pre[b * G + j] = acc[b] + to_float(gx[gi]);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kUnits; ++k) {
      const int u = j + k * G;
      if (u < nb * Dh) {
        const int b = u / Dh, ee = u % Dh;
        const float* p = pre + b * G;
        const Cell r = cell(p[ee], p[Dh + ee], p[2 * Dh + ee], p[3 * Dh + ee], rc[k], rn[k], rm[k], exp_forget);
        const size_t s = unit_offset(b0 + b, hh, ee, H, Dh);
        if (keep) save_step(gates, cs, ns, hprev, t, T_, (size_t)B * HD, s, hs[u], rc[k], rn[k], r);
        rc[k] = r.c;
        rn[k] = r.n;
        rm[k] = r.m;
        hs[u] = r.h;
        hout[((size_t)(b0 + b) * T_ + t) * HD + (size_t)hh * Dh + ee] = from_float<T>(r.h);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < kUnits; ++k) {
    const int u = j + k * G;
    if (u < nb * Dh) {
      const size_t s = unit_offset(b0 + u / Dh, hh, u % Dh, H, Dh);
      c[s] = rc[k];
      n[s] = rn[k];
      m[s] = rm[k];
      h[s] = hs[u];
    }
  }
}

__global__ void __launch_bounds__(4 * kSLSTMMaxHeadSize)
slstm_backward_kernel(const float* __restrict__ RT, const float* __restrict__ dh_out, float* __restrict__ dc,
                      float* __restrict__ dn, float* __restrict__ dh, const float* __restrict__ gates,
                      const float* __restrict__ cs, const float* __restrict__ ns, float* __restrict__ dpre,
                      float* __restrict__ dlogf0, int B, int T_, int H, int Dh, float clip, bool r_shared) {
  XSEQ_DYNAMIC_SMEM(unsigned char, smem);
  const int hh = blockIdx.x;
  const int b0 = blockIdx.y * kTile;
  const int nb = min(kTile, B - b0);
  const int G = 4 * Dh;
  const int j = threadIdx.x;
  float* dhs = reinterpret_cast<float*>(smem);  // (kTile, Dh): gradient reaching h_t through R
  float* dps = dhs + kTile * Dh;                // (kTile, 4 Dh): dpre of the step
  float* RTs = dps + kTile * G;
  size_t gstride;
  // RT[g, hh, e, d] at RTh[g * gstride + e * Dh + d]
  const float* RTh = head_block(RT, RTs, H, hh, Dh, r_shared, &gstride);
  const size_t HD = (size_t)H * Dh, BHD = (size_t)B * HD;
  float rdc[kUnits], rdn[kUnits];
#pragma unroll
  for (int k = 0; k < kUnits; ++k) {
    const int u = j + k * G;
    if (u < nb * Dh) {
      const size_t s = unit_offset(b0 + u / Dh, hh, u % Dh, H, Dh);
      rdc[k] = dc[s];
      rdn[k] = dn[s];
      dhs[u] = dh[s];
    }
  }
  __syncthreads();
  for (int t = T_ - 1; t >= 0; --t) {
#pragma unroll
    for (int k = 0; k < kUnits; ++k) {
      const int u = j + k * G;
      if (u < nb * Dh) {
        const int b = u / Dh, ee = u % Dh;
        const size_t s = unit_offset(b0 + b, hh, ee, H, Dh);
        const float* gt = gates + (size_t)t * 5 * BHD + s;
        const float ig = gt[0], fg = gt[BHD], zg = gt[2 * BHD], og = gt[3 * BHD], fac = gt[4 * BHD];
        const float c_new = cs[(t + 1) * BHD + s], n_new = ns[(t + 1) * BHD + s];
        const float gh = dh_out[((size_t)(b0 + b) * T_ + t) * HD + (size_t)hh * Dh + ee] + dhs[u];
        // h = o c / n (eq 3); c = f c_prev + i z, n = f n_prev + i (eqs 49-50); m is detached
        const float d_o = gh * c_new / n_new;
        const float dct = rdc[k] + gh * og / n_new;
        const float dnt = rdn[k] - gh * og * c_new / (n_new * n_new);
        const float di = dct * zg + dnt;
        const float dz = dct * ig;
        const float dlogf = (dct * cs[t * BHD + s] + dnt * ns[t * BHD + s]) * fg;
        const float p0 = di * ig, p1 = dlogf * fac, p2 = dz * (1.f - zg * zg), p3 = d_o * og * (1.f - og);
        float* dp = dps + b * G;
        dp[ee] = p0;
        dp[Dh + ee] = p1;
        dp[2 * Dh + ee] = p2;
        dp[3 * Dh + ee] = p3;
        float* out = dpre + (((size_t)(b0 + b) * T_ + t) * 4 * H + hh) * Dh + ee;  // (b, t, g, hh, ee)
        out[0] = p0;
        out[HD] = p1;
        out[2 * HD] = p2;
        out[3 * HD] = p3;
        rdc[k] = dct * fg;
        rdn[k] = dnt * fg;
        if (t == 0) dlogf0[s] = dlogf;
      }
    }
    __syncthreads();
    // dh_{t-1}[b, d] = sum_{g, e} dpre[b, g, e] R[g, hh, d, e]
    for (int u = j; u < nb * Dh; u += blockDim.x) {
      const int b = u / Dh, d = u % Dh;
      const float* dp = dps + b * G;
      float acc = 0.f;
      for (int gg = 0; gg < 4; ++gg) {
        const float* Rg = RTh + gg * gstride + d;
        const float* dpg = dp + gg * Dh;
        for (int ee = 0; ee < Dh; ++ee) acc += dpg[ee] * Rg[(size_t)ee * Dh];
      }
      dhs[u] = fminf(fmaxf(acc, -clip), clip);  // App. B.4: the recurrent gradient's magnitude is clipped
    }
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < kUnits; ++k) {
    const int u = j + k * G;
    if (u < nb * Dh) {
      const size_t s = unit_offset(b0 + u / Dh, hh, u % Dh, H, Dh);
      dc[s] = rdc[k];
      dn[s] = rdn[k];
      dh[s] = dhs[u];
    }
  }
}

// ---- Hopper: one thread-block cluster per (head, tile of kClusterRows batch rows) ----------------------------
//
// The cluster's K blocks split the head's Dh units: block `rank` owns units [rank U, rank U + U) and keeps
// R's columns for them (all four gates, float32) in its shared memory for all T steps, so R never leaves the
// chip, and K times more multiprocessors work than with one block per head. Each step, a block computes its
// units' gate rows (eqs 31-34) and cell (eqs 46-50), writes its slice of h_t into every block's copy of
// h (distributed shared memory, double-buffered) and meets the others at the cluster barrier. The backward
// pass mirrors it: each block computes its units' pre-activation gradients, writes them into every block,
// and after the barrier each block forms dh_{t-1} for its own units from all of them.
// Threads: tid = 8 ul + 4 rg + s, for unit ul of the block, row group rg (rows 4 rg .. 4 rg + 3) and s, the
// quarter of the dot product; after the reduction over s (lane shuffles) thread s applies the cell to row
// 4 rg + s. So 8 U threads per block, U a multiple of 4 (whole warps).
constexpr int kClusterRows = 8;
constexpr int kClusterMax = 8;
constexpr int kClusterUnits = 32;

struct ClusterPlan {
  int K, U;
};

__host__ __device__ inline ClusterPlan cluster_plan(int Dh) {
  int K = (Dh + kClusterUnits - 1) / kClusterUnits;
  K = K < 1 ? 1 : (K > kClusterMax ? kClusterMax : K);
  int U = (Dh + K - 1) / K;
  U = (U + 3) / 4 * 4;
  return {K, U};
}

__host__ __device__ inline size_t cluster_fwd_smem(int Dh, int U) {
  return ((size_t)Dh * U * 4 + 2 * (size_t)Dh * kClusterRows) * sizeof(float);
}

__host__ __device__ inline size_t cluster_bwd_smem(int Dh, int U) {
  return ((size_t)Dh * U * 4 + 2 * (size_t)Dh * 4 * kClusterRows) * sizeof(float);
}

// sum over the 4 adjacent lanes that split a dot product; every lane gets the total
[[maybe_unused]] __device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  x += __shfl_xor_sync(0xffffffffu, x, 2);
  return x;
}

[[maybe_unused]] __device__ __forceinline__ float pick(int s, float a0, float a1, float a2, float a3) {
  return s == 0 ? a0 : (s == 1 ? a1 : (s == 2 ? a2 : a3));
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
// Where a thread of a cluster kernel works: the cluster's head hh and batch rows b0 .. b0 + nb - 1, this
// block's rank, the thread's unit u (ul within the block), row group rg, quarter s of the dot products and,
// after their reduction, its row of the tile; active when that row and unit exist.
struct ClusterPos {
  int K, rank, hh, b0, nb, s, rg, ul, u, row;
  bool active;
};
__device__ __forceinline__ ClusterPos cluster_pos(const cooperative_groups::cluster_group& cluster, int B, int Dh,
                                                  int U) {
  ClusterPos p;
  p.K = (int)cluster.num_blocks();
  p.rank = (int)cluster.block_rank();
  const int ntiles = (B + kClusterRows - 1) / kClusterRows, grp = blockIdx.x / p.K;
  p.hh = grp / ntiles;
  p.b0 = (grp % ntiles) * kClusterRows;
  p.nb = min(kClusterRows, B - p.b0);
  const int tid = threadIdx.x;
  p.s = tid & 3;
  p.rg = (tid >> 2) & 1;
  p.ul = tid >> 3;
  p.u = p.rank * U + p.ul;
  p.row = 4 * p.rg + p.s;
  p.active = p.u < Dh && p.row < p.nb;
  return p;
}

// Columns rank U .. rank U + U - 1 of head hh's block of a (4, H, Dh, Dh) matrix M, as float32, into
// dst[(row U + col) 4 + g] (zero past Dh): R's columns for the forward pass, RT's for the backward pass.
template <typename T>
__device__ __forceinline__ void stage_columns(const T* M, float* dst, int H, int hh, int Dh, int U, int rank) {
  for (int k = threadIdx.x; k < Dh * U * 4; k += blockDim.x) {
    const int g = k & 3, col = rank * U + (k >> 2) % U, row = (k >> 2) / U;
    dst[k] = col < Dh ? to_float(M[(((size_t)g * H + hh) * Dh + row) * Dh + col]) : 0.f;
  }
}

// The cluster barrier of one step, whole (cluster.sync) or split into arrive and wait (kSplit).
struct NoToken {};
template <bool kSplit>
__device__ __forceinline__ auto barrier_arrive_if(const cooperative_groups::cluster_group& cluster) {
  if constexpr (kSplit) {
    return cluster.barrier_arrive();
  } else {
    return NoToken{};
  }
}
template <bool kSplit, class Token>
__device__ __forceinline__ void barrier_wait_or_sync(const cooperative_groups::cluster_group& cluster, Token& token) {
  if constexpr (kSplit) {
    cluster.barrier_wait(std::move(token));
  } else {
    cluster.sync();
  }
}
#endif

template <typename T, bool kSplit>
__global__ void __launch_bounds__(8 * kClusterUnits)
slstm_forward_cluster_kernel(const T* __restrict__ gx, const T* __restrict__ R, float* __restrict__ c,
                             float* __restrict__ n, float* __restrict__ m, float* __restrict__ h,
                             T* __restrict__ hout, float* __restrict__ gates, float* __restrict__ cs,
                             float* __restrict__ ns, float* __restrict__ hprev, int B, int T_, int H, int Dh, int U,
                             bool exp_forget, bool keep) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // launched on compute capability 9.0 and above only (see slstm_forward)
#else
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  const ClusterPos p = cluster_pos(cluster, B, Dh, U);
  const int K = p.K, hh = p.hh, b0 = p.b0, nb = p.nb, tid = threadIdx.x, s = p.s, rg = p.rg, ul = p.ul, u = p.u,
            row = p.row;
  const bool active = p.active;
  XSEQ_DYNAMIC_SMEM(unsigned char, smem);
  float* Rs = reinterpret_cast<float*>(smem);  // R[g, hh, d, rank U + ul] at Rs[(d U + ul) 4 + g]
  float* hs = Rs + (size_t)Dh * U * 4;         // (2, Dh, kClusterRows): h_{t-1} of the tile, double-buffered
  stage_columns(R, Rs, H, hh, Dh, U, p.rank);
  for (int k = tid; k < 2 * Dh * kClusterRows; k += blockDim.x) {  // rows past nb stay 0 in both buffers
    const int r = k % kClusterRows, d = (k / kClusterRows) % Dh;
    hs[k] = r < nb ? h[unit_offset(b0 + r, hh, d, H, Dh)] : 0.f;
  }
  const size_t HD = (size_t)H * Dh, BHD = (size_t)B * HD;
  const size_t so = active ? unit_offset(b0 + row, hh, u, H, Dh) : 0;
  float rc = 0.f, rn = 0.f, rm = 0.f, hl = 0.f;
  float gxn[4] = {0.f, 0.f, 0.f, 0.f};  // gx of the coming step, loaded a step ahead
  const T* gxp = gx + ((size_t)(active ? b0 + row : 0) * T_ * 4 * H + hh) * Dh + (active ? u : 0);
  if (active) {
    rc = c[so];
    rn = n[so];
    rm = m[so];
    hl = h[so];
#pragma unroll
    for (int g = 0; g < 4; ++g) gxn[g] = to_float(gxp[g * HD]);
  }
  cluster.sync();  // every block's R slice and h_0 are in place before any block writes into another
  for (int t = 0; t < T_; ++t) {
    const float* hc = hs + (t & 1) * Dh * kClusterRows;
    float* hn = hs + ((t + 1) & 1) * Dh * kClusterRows;
    // pre[row, g] = gx + sum_d h_{t-1}[row, d] R[g, hh, d, u]   (eqs 31-34), d split over the 4 lanes s
    float a[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int g = 0; g < 4; ++g) a[r][g] = 0.f;
    const float* Ru = Rs + ul * 4;
    for (int d = s; d < Dh; d += 4) {
      const float4 hv = *reinterpret_cast<const float4*>(hc + d * kClusterRows + 4 * rg);
      const float4 rv = *reinterpret_cast<const float4*>(Ru + (size_t)d * U * 4);
      const float hr[4] = {hv.x, hv.y, hv.z, hv.w}, rr[4] = {rv.x, rv.y, rv.z, rv.w};
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int g = 0; g < 4; ++g) a[r][g] += hr[r] * rr[g];
    }
    float pre[4];
#pragma unroll
    for (int g = 0; g < 4; ++g)
      pre[g] = pick(s, quad_sum(a[0][g]), quad_sum(a[1][g]), quad_sum(a[2][g]), quad_sum(a[3][g])) + gxn[g];
    // The cell, h_t published into every block of the cluster, then this step's global traffic: the next
    // step's gx, the saved tensors, h out. With kSplit the cluster barrier is split around that traffic
    // (arrive after publishing, wait after the traffic), so the barrier's release covers the shared-memory
    // writes alone and its latency overlaps the global loads and stores.
    Cell r{};
    if (active) {
      r = cell(pre[0], pre[1], pre[2], pre[3], rc, rn, rm, exp_forget);
      for (int q = 0; q < K; ++q) cluster.map_shared_rank(hn, q)[u * kClusterRows + row] = r.h;
    }
    auto token = barrier_arrive_if<kSplit>(cluster);
    if (active) {
      if (t + 1 < T_) {
#pragma unroll
        for (int g = 0; g < 4; ++g) gxn[g] = to_float(gxp[((size_t)(t + 1) * 4 + g) * HD]);
      }
      if (keep) save_step(gates, cs, ns, hprev, t, T_, BHD, so, hl, rc, rn, r);
      rc = r.c;
      rn = r.n;
      rm = r.m;
      hl = r.h;
      hout[((size_t)(b0 + row) * T_ + t) * HD + (size_t)hh * Dh + u] = from_float<T>(r.h);
    }
    barrier_wait_or_sync<kSplit>(cluster, token);  // h_t complete in every block; h_{t-1}'s buffer free
  }
  if (active) {
    c[so] = rc;
    n[so] = rn;
    m[so] = rm;
    h[so] = hl;
  }
#endif
}

// Saved tensors of one step for one (row, unit), loaded a step ahead of their use.
struct StepSaved {
  float ig, fg, zg, og, fac, c_new, n_new, c_old, n_old, dh_out;
};

[[maybe_unused]] __device__ __forceinline__ StepSaved load_saved(const float* gates, const float* cs, const float* ns,
                                                const float* dh_out, int t, size_t so, size_t BHD, size_t oo) {
  const float* gt = gates + (size_t)t * 5 * BHD + so;
  return {gt[0], gt[BHD], gt[2 * BHD], gt[3 * BHD], gt[4 * BHD], cs[(t + 1) * BHD + so], ns[(t + 1) * BHD + so],
          cs[t * BHD + so], ns[t * BHD + so], dh_out[oo]};
}

template <bool kSplit>
__global__ void __launch_bounds__(8 * kClusterUnits)
slstm_backward_cluster_kernel(const float* __restrict__ RT, const float* __restrict__ dh_out, float* __restrict__ dc,
                              float* __restrict__ dn, float* __restrict__ dh, const float* __restrict__ gates,
                              const float* __restrict__ cs, const float* __restrict__ ns, float* __restrict__ dpre,
                              float* __restrict__ dlogf0, int B, int T_, int H, int Dh, int U, float clip) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // launched on compute capability 9.0 and above only (see slstm_backward)
#else
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  const ClusterPos p = cluster_pos(cluster, B, Dh, U);
  const int K = p.K, hh = p.hh, b0 = p.b0, tid = threadIdx.x, s = p.s, rg = p.rg, ul = p.ul, u = p.u, row = p.row;
  const bool active = p.active;
  XSEQ_DYNAMIC_SMEM(unsigned char, smem);
  // R[g, hh, rank U + ul, e] = RT[g, hh, e, rank U + ul] at Rs[(e U + ul) 4 + g]
  float* Rs = reinterpret_cast<float*>(smem);
  float* dps = Rs + (size_t)Dh * U * 4;        // (2, Dh, 4, kClusterRows): dpre of the step, double-buffered
  stage_columns(RT, Rs, H, hh, Dh, U, p.rank);
  for (int k = tid; k < 2 * Dh * 4 * kClusterRows; k += blockDim.x) dps[k] = 0.f;  // rows past nb stay 0
  const size_t HD = (size_t)H * Dh, BHD = (size_t)B * HD;
  const size_t so = active ? unit_offset(b0 + row, hh, u, H, Dh) : 0;
  const size_t ob = active ? (size_t)(b0 + row) * T_ * HD + (size_t)hh * Dh + u : 0;  // dh_out[b, t, hh, u] = ob + t HD
  float rdc = 0.f, rdn = 0.f, rdh = 0.f;  // gradients reaching c_t, n_t and (through R) h_t
  StepSaved nx{};
  if (active) {
    rdc = dc[so];
    rdn = dn[so];
    rdh = dh[so];
    nx = load_saved(gates, cs, ns, dh_out, T_ - 1, so, BHD, ob + (size_t)(T_ - 1) * HD);
  }
  cluster.sync();  // every block's R slice and zeroed buffers are in place before any block writes into another
  for (int t = T_ - 1; t >= 0; --t) {
    float* dpn = dps + (t & 1) * Dh * 4 * kClusterRows;
    // as in the forward pass: publish dpre_t into every block, then the global traffic (dpre out, the next
    // step's saved tensors), with the cluster barrier split around it when kSplit
    float p[4] = {0.f, 0.f, 0.f, 0.f}, dlogf = 0.f;
    if (active) {
      const StepSaved sv = nx;
      const float gh = sv.dh_out + rdh;
      // h = o c / n (eq 3); c = f c_prev + i z, n = f n_prev + i (eqs 49-50); m is detached
      const float d_o = gh * sv.c_new / sv.n_new;
      const float dct = rdc + gh * sv.og / sv.n_new;
      const float dnt = rdn - gh * sv.og * sv.c_new / (sv.n_new * sv.n_new);
      const float di = dct * sv.zg + dnt;
      const float dz = dct * sv.ig;
      dlogf = (dct * sv.c_old + dnt * sv.n_old) * sv.fg;
      p[0] = di * sv.ig;
      p[1] = dlogf * sv.fac;
      p[2] = dz * (1.f - sv.zg * sv.zg);
      p[3] = d_o * sv.og * (1.f - sv.og);
      rdc = dct * sv.fg;
      rdn = dnt * sv.fg;
      for (int q = 0; q < K; ++q) {
        float* dst = cluster.map_shared_rank(dpn, q) + u * 4 * kClusterRows + row;
#pragma unroll
        for (int g = 0; g < 4; ++g) dst[g * kClusterRows] = p[g];
      }
    }
    auto token = barrier_arrive_if<kSplit>(cluster);
    if (active) {
      if (t > 0) nx = load_saved(gates, cs, ns, dh_out, t - 1, so, BHD, ob + (size_t)(t - 1) * HD);
      float* out = dpre + (((size_t)(b0 + row) * T_ + t) * 4 * H + hh) * Dh + u;  // (b, t, g, hh, u)
#pragma unroll
      for (int g = 0; g < 4; ++g) out[g * HD] = p[g];
      if (t == 0) dlogf0[so] = dlogf;
    }
    barrier_wait_or_sync<kSplit>(cluster, token);  // dpre_t complete in every block
    // dh_{t-1}[row, u] = sum_{g, e} dpre_t[row, g, e] R[g, hh, u, e], e split over the 4 lanes s
    float a[4] = {0.f, 0.f, 0.f, 0.f};
    const float* Ru = Rs + ul * 4;
    for (int e = s; e < Dh; e += 4) {
      const float4 rv = *reinterpret_cast<const float4*>(Ru + (size_t)e * U * 4);
      const float rr[4] = {rv.x, rv.y, rv.z, rv.w};
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        const float4 dv = *reinterpret_cast<const float4*>(dpn + (e * 4 + g) * kClusterRows + 4 * rg);
        a[0] += rr[g] * dv.x;
        a[1] += rr[g] * dv.y;
        a[2] += rr[g] * dv.z;
        a[3] += rr[g] * dv.w;
      }
    }
    const float tot = pick(s, quad_sum(a[0]), quad_sum(a[1]), quad_sum(a[2]), quad_sum(a[3]));
    rdh = fminf(fmaxf(tot, -clip), clip);  // App. B.4: the recurrent gradient's magnitude is clipped
  }
  if (active) {
    dc[so] = rdc;
    dn[so] = rdn;
    dh[so] = rdh;
  }
#endif
}

// Shared memory: the fixed part, plus R's block for this head when it fits under the device's opt-in limit.
cudaError_t plan(const void* kernel, int Dh, size_t r_elem, size_t* bytes, bool* r_shared) {
  int dev = 0, limit = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (err != cudaSuccess) return err;
  const size_t fixed = (size_t)kTile * 5 * Dh * sizeof(float);
  const size_t with_r = fixed + 4 * (size_t)Dh * Dh * r_elem;
  *r_shared = with_r <= (size_t)limit;
  *bytes = *r_shared ? with_r : fixed;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*bytes);
}

bool g_use_clusters = true;
bool g_split_barrier = false;

// The cluster kernels' launch: on compute capability 9.0+, when enabled and their shared memory fits.
cudaError_t cluster_launch_plan(int Dh, size_t bytes, const void* kernel, bool* use) {
  *use = false;
  if (!g_use_clusters) return cudaSuccess;
  int dev = 0, major = 0, limit = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess) return err;
  if (major < 9 || bytes > (size_t)limit) return cudaSuccess;
  *use = true;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

}  // namespace

void slstm_use_clusters(bool on) { g_use_clusters = on; }

void slstm_split_cluster_barrier(bool on) { g_split_barrier = on; }

cudaError_t slstm_forward(const SLSTMForwardParams& params, cudaStream_t stream) {
  const DType dt = params.dt;
  const int B = params.B, T = params.T, H = params.H, Dh = params.Dh;
  const void *gx = params.gx, *R = params.R;
  float *c = params.c, *n = params.n, *m = params.m, *h = params.h;
  void* hout = params.hout;
  float *gates = params.gates, *cs = params.cs, *ns = params.ns, *hprev = params.hprev;
  const bool exp_forget = params.exp_forget, keep = params.keep;
  if (Dh < 1 || Dh > kSLSTMMaxHeadSize || B < 1 || T < 1 || H < 1) return cudaErrorInvalidValue;
  cudaError_t err;
  {  // Hopper: clusters
    const ClusterPlan p = cluster_plan(Dh);
    const size_t cbytes = cluster_fwd_smem(Dh, p.U);
    const dim3 cgrid(p.K * H * ((B + kClusterRows - 1) / kClusterRows)), cblock(8 * p.U);
    bool use = false;
    if (dt == DType::f32) {
      auto k = g_split_barrier ? slstm_forward_cluster_kernel<float, true> : slstm_forward_cluster_kernel<float, false>;
      if ((err = cluster_launch_plan(Dh, cbytes, (const void*)k, &use)) != cudaSuccess) return err;
      if (use) {
        if ((err = XSEQ_LAUNCH_CLUSTER(k, cgrid, cblock, cbytes, stream, p.K)(
                 static_cast<const float*>(gx), static_cast<const float*>(R), c, n, m, h, static_cast<float*>(hout),
                 gates, cs, ns, hprev, B, T, H, Dh, p.U, exp_forget, keep)) != cudaSuccess)
          return err;
        return cudaGetLastError();
      }
    } else {
      using bf = __nv_bfloat16;
      auto k = g_split_barrier ? slstm_forward_cluster_kernel<bf, true> : slstm_forward_cluster_kernel<bf, false>;
      if ((err = cluster_launch_plan(Dh, cbytes, (const void*)k, &use)) != cudaSuccess) return err;
      if (use) {
        if ((err = XSEQ_LAUNCH_CLUSTER(k, cgrid, cblock, cbytes, stream, p.K)(
                 static_cast<const bf*>(gx), static_cast<const bf*>(R), c, n, m, h, static_cast<bf*>(hout), gates, cs,
                 ns, hprev, B, T, H, Dh, p.U, exp_forget, keep)) != cudaSuccess)
          return err;
        return cudaGetLastError();
      }
    }
  }
  const dim3 grid(H, (B + kTile - 1) / kTile), block(4 * Dh);
  size_t bytes = 0;
  bool r_shared = false;
  if (dt == DType::f32) {
    auto k = slstm_forward_kernel<float>;
    if ((err = plan((const void*)k, Dh, sizeof(float), &bytes, &r_shared)) != cudaSuccess) return err;
    XSEQ_LAUNCH(k, grid, block, bytes, stream)(static_cast<const float*>(gx), static_cast<const float*>(R), c, n, m,
                                               h, static_cast<float*>(hout), gates, cs, ns, hprev, B, T, H, Dh,
                                               exp_forget, keep, r_shared);
  } else {
    auto k = slstm_forward_kernel<__nv_bfloat16>;
    if ((err = plan((const void*)k, Dh, sizeof(__nv_bfloat16), &bytes, &r_shared)) != cudaSuccess) return err;
    using bf = __nv_bfloat16;
    XSEQ_LAUNCH(k, grid, block, bytes, stream)(static_cast<const bf*>(gx), static_cast<const bf*>(R), c, n, m, h,
                                               static_cast<bf*>(hout), gates, cs, ns, hprev, B, T, H, Dh,
                                               exp_forget, keep, r_shared);
  }
  return cudaGetLastError();
}

cudaError_t slstm_backward(const SLSTMBackwardParams& params, cudaStream_t stream) {
  const int B = params.B, T = params.T, H = params.H, Dh = params.Dh;
  const float *RT = params.RT, *dh_out = params.dh_out, *gates = params.gates, *cs = params.cs, *ns = params.ns;
  float *dc = params.dc, *dn = params.dn, *dh = params.dh, *dpre = params.dpre, *dlogf0 = params.dlogf0;
  const float clip = params.clip;
  if (Dh < 1 || Dh > kSLSTMMaxHeadSize || B < 1 || T < 1 || H < 1) return cudaErrorInvalidValue;
  cudaError_t err;
  {  // Hopper: clusters
    const ClusterPlan p = cluster_plan(Dh);
    const size_t cbytes = cluster_bwd_smem(Dh, p.U);
    const dim3 cgrid(p.K * H * ((B + kClusterRows - 1) / kClusterRows)), cblock(8 * p.U);
    bool use = false;
    auto k = g_split_barrier ? slstm_backward_cluster_kernel<true> : slstm_backward_cluster_kernel<false>;
    if ((err = cluster_launch_plan(Dh, cbytes, (const void*)k, &use)) != cudaSuccess) return err;
    if (use) {
      if ((err = XSEQ_LAUNCH_CLUSTER(k, cgrid, cblock, cbytes, stream, p.K)(
               RT, dh_out, dc, dn, dh, gates, cs, ns, dpre, dlogf0, B, T, H, Dh, p.U, clip)) != cudaSuccess)
        return err;
      return cudaGetLastError();
    }
  }
  const dim3 grid(H, (B + kTile - 1) / kTile), block(4 * Dh);
  size_t bytes = 0;
  bool r_shared = false;
  err = plan((const void*)slstm_backward_kernel, Dh, sizeof(float), &bytes, &r_shared);
  if (err != cudaSuccess) return err;
  XSEQ_LAUNCH(slstm_backward_kernel, grid, block, bytes, stream)(RT, dh_out, dc, dn, dh, gates, cs, ns, dpre, dlogf0,
                                                                 B, T, H, Dh, clip, r_shared);
  return cudaGetLastError();
}

}  // namespace xseq
