// Chunkwise mLSTM forward and backward (kernel-only translation unit; interface in mlstm_kernels.h). Same
// math as xseq/ops/mlstm_chunkwise.py: the sequence is cut into chunks of kChunk steps; the state (C, n, m)
// is carried across chunks by the recurrence (eqs 9-10 and 46-48, one step per chunk), and each chunk's
// output is the stabilised parallel form (eqs 76-83) plus the contribution of the state it started from.
//
// Four kernels in float32 SIMT, and for bfloat16 inputs a tensor-core version of the output kernel
// (out_fwd_tc; the rest on tensor cores is the next step, see NOTES.md):
//   state_fwd  (B*H, Dv tiles): walks the chunks in order, keeps a Dqk x kBV tile of C in registers, stores
//              the state entering every chunk;
//   out_fwd    (B*H, chunks):   every chunk at once: the intra-chunk attention-like part and the incoming
//              state's part, and the row stabiliser and denominator the backward pass needs;
//   state_bwd  (B*H, Dv tiles): walks the chunks backwards with the gradient of the state after each chunk;
//   grad       (B*H, chunks):   dq, dk, dv of every chunk from the saved states and state gradients.
// The gate gradients follow from dq and dk in a few O(T) tensor ops (xseq/ops/mlstm_cuda.py).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

#include "common.cuh"
#include "mlstm_kernels.h"

namespace xseq {
namespace {

constexpr int kChunk = kMLSTMChunk;            // steps per chunk
constexpr int kBV = 64;                        // columns of C per block in the state kernels
constexpr int kThreads = 256;
constexpr int kRegs = kMLSTMMaxDqk * kBV / kThreads;  // C elements per thread in the state kernels

struct Dims {
  int H, T, Dqk, Dv, NC;
  float scale;  // 1/sqrt(Dqk), applied to k as it is loaded (in float32, also for bfloat16 inputs)
};

__device__ __forceinline__ int chunk_len(const Dims& d, int c) { return min(kChunk, d.T - c * kChunk); }

// The state kernels' update of their register tile (see tile_load): reg = f reg + sum_j A[j]^T Bm[j] over the
// chunk's L steps, A (L, Dqk) and Bm (L, kBV) in shared memory. Step by step: the thread's column of Bm is
// loaded once and its rows of A are broadcast across the warp. Rows past Dqk (when Dqk < kMLSTMMaxDqk) read
// other shared memory and are never stored, so there is no per-row test.
__device__ __forceinline__ void decay_and_add_outer(float (&reg)[kRegs], float f, const float* A, const float* Bm,
                                                    int L, const Dims& d) {
  const int dd0 = threadIdx.x / kBV, ee = threadIdx.x % kBV;  // element r: row dd0 + r kThreads / kBV, column ee
#pragma unroll
  for (int r = 0; r < kRegs; ++r) reg[r] *= f;
#pragma unroll 1
  for (int j = 0; j < L; ++j) {
    const float b = Bm[j * kBV + ee];
    const float* ar = A + j * d.Dqk + dd0;
#pragma unroll
    for (int r = 0; r < kRegs; ++r) reg[r] += ar[r * (kThreads / kBV)] * b;
  }
}

// Per-chunk gate quantities in shared memory, computed by one thread in sequence order:
//   logf[t] = log sigmoid(ftil_t); a[t] = sum_{s <= t} logf[s]; to_end[j] = sum_{s > j} logf[s] + itil_j.
template <typename T>
__device__ void chunk_gates(const T* ig, const T* fg, size_t base, int Lc, float* igs, float* logf, float* a,
                            float* to_end) {
  for (int t = threadIdx.x; t < Lc; t += blockDim.x) {
    igs[t] = to_float(ig[base + t]);
    logf[t] = log_sigmoid(to_float(fg[base + t]));
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (int t = 0; t < Lc; ++t) a[t] = (s += logf[t]);
    s = 0.f;
    for (int j = Lc - 1; j >= 0; --j) {
      to_end[j] = s + igs[j];
      s += logf[j];
    }
  }
  __syncthreads();
}

// Row t of the intra-chunk log weights, Dtil[t, j] = sum_{j < s <= t} logf[s] + itil_j (eqs 76-79), summed
// per segment for precision, written to row[j] for j <= t; returns their maximum.
__device__ __forceinline__ float dtil_row(int t, const float* igs, const float* logf, float* row) {
  float s = 0.f, mx = -INFINITY;
  for (int j = t; j >= 0; --j) {
    const float d = s + igs[j];
    row[j] = d;
    mx = fmaxf(mx, d);
    s += logf[j];
  }
  return mx;
}

// This thread's share of a Dqk x kBV column tile (columns e0 ...) of a (Dqk, Dv) float32 matrix, held in
// registers by the state kernels: element r is row (tid + r kThreads) / kBV, column e0 + (tid + r kThreads) % kBV.
__device__ __forceinline__ void tile_load(float (&reg)[kRegs], const float* M, int e0, const Dims& d) {
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    const int u = threadIdx.x + r * kThreads, dd = u / kBV, e = e0 + u % kBV;
    reg[r] = (dd < d.Dqk && e < d.Dv) ? M[(size_t)dd * d.Dv + e] : 0.f;
  }
}

__device__ __forceinline__ void tile_store(const float (&reg)[kRegs], float* M, int e0, const Dims& d) {
#pragma unroll
  for (int r = 0; r < kRegs; ++r) {
    const int u = threadIdx.x + r * kThreads, dd = u / kBV, e = e0 + u % kBV;
    if (dd < d.Dqk && e < d.Dv) M[(size_t)dd * d.Dv + e] = reg[r];
  }
}

// The state kernels' shared memory (state_smem bytes): k (kChunk, Dqk) and v (kChunk, kBV) of a chunk, its gate
// quantities (kChunk each; w holds to_end, then the weights exp(to_end - loc)) and the scalars f, i, m_new.
struct StateSmem {
  float *ks, *vs, *igs, *logf, *a, *w, *sc;
};
__device__ __forceinline__ StateSmem state_smem_layout(float* sm, const Dims& d) {
  StateSmem r;
  r.ks = sm;
  r.vs = r.ks + kChunk * d.Dqk;
  r.igs = r.vs + kChunk * kBV;
  r.logf = r.igs + kChunk;
  r.a = r.logf + kChunk;
  r.w = r.a + kChunk;
  r.sc = r.w + kChunk;
  return r;
}

// A chunk's gates (chunk_gates), its weights w_j = exp(to_end_j - loc) with its own stabiliser loc = max to_end,
// and eqs 46-48 with one step per chunk from the stabiliser mm before it: sc = (f, i, m after the chunk).
template <typename T>
__device__ __forceinline__ void chunk_weights(const T* ig, const T* fg, size_t t0, int Lc, float* igs, float* logf,
                                              float* a, float* w, float* sc, float mm) {
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, w);
  if (threadIdx.x == 0) {  // the chunk's own stabiliser is loc = max to_end
    float loc = -INFINITY;
    for (int j = 0; j < Lc; ++j) loc = fmaxf(loc, w[j]);
    for (int j = 0; j < Lc; ++j) w[j] = expf(w[j] - loc);
    const float g = a[Lc - 1], m_new = fmaxf(g + mm, loc);
    sc[0] = expf(g + mm - m_new);
    sc[1] = expf(loc - m_new);
    sc[2] = m_new;
  }
  __syncthreads();
}

// Columns e0 .. e0 + kBV - 1 of the chunk's v (Lc rows from t0), as float32, zero past Dv.
template <typename T>
__device__ __forceinline__ void stage_v_tile(const T* v, size_t t0, int Lc, int e0, float* vs, const Dims& d) {
  for (int u = threadIdx.x; u < Lc * kBV; u += blockDim.x) {
    const int j = u / kBV, e = e0 + u % kBV;
    vs[u] = e < d.Dv ? to_float(v[(t0 + j) * d.Dv + e]) : 0.f;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
state_fwd_kernel(const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ ig,
                 const T* __restrict__ fg, float* __restrict__ C, const float* __restrict__ n,
                 const float* __restrict__ m, float* __restrict__ n_out, float* __restrict__ m_out,
                 float* __restrict__ Cin, float* __restrict__ nin, float* __restrict__ min_, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  const StateSmem sh = state_smem_layout(sm, d);
  float *ks = sh.ks, *vs = sh.vs, *igs = sh.igs, *logf = sh.logf, *a = sh.a, *w = sh.w, *sc = sh.sc;
  const int bh = blockIdx.x, e0 = blockIdx.y * kBV, tid = threadIdx.x;
  const bool lead = blockIdx.y == 0;     // the block that also owns n and m
  float rC[kRegs];
  float* Cg = C + (size_t)bh * d.Dqk * d.Dv;
  tile_load(rC, Cg, e0, d);
  float rn = tid < d.Dqk ? n[(size_t)bh * d.Dqk + tid] : 0.f;
  float mm = m[bh];
  for (int c = 0; c < d.NC; ++c) {
    const int Lc = chunk_len(d, c);
    const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk;
    chunk_weights(ig, fg, t0, Lc, igs, logf, a, w, sc, mm);  // w and the scalars, read by every thread below
    const float f = sc[0], i = sc[1];
    // k_j scaled by 1/sqrt(Dqk) and by its weight i w_j, so the update below is one product per element
    for (int u = tid; u < Lc * d.Dqk; u += kThreads) ks[u] = to_float(k[t0 * d.Dqk + u]) * (d.scale * i * w[u / d.Dqk]);
    stage_v_tile(v, t0, Lc, e0, vs, d);
    __syncthreads();
    // the state entering chunk c, then C = f C + sum_j (i w_j k_j) v_j^T and n = f n + sum_j i w_j k_j: for
    // each step j the thread's column ee of v is loaded once and its rows of k are broadcast across the warp
    const size_t cbase = ((size_t)bh * d.NC + c) * d.Dqk;
    tile_store(rC, Cin + cbase * d.Dv, e0, d);
    decay_and_add_outer(rC, f, ks, vs, Lc, d);
    if (tid < d.Dqk) {
      if (lead) nin[cbase + tid] = rn;
      float acc = 0.f;
      for (int j = 0; j < Lc; ++j) acc += ks[j * d.Dqk + tid];
      rn = f * rn + acc;
    }
    if (lead && tid == 0) min_[(size_t)bh * d.NC + c] = mm;
    mm = sc[2];
    __syncthreads();
  }
  tile_store(rC, Cg, e0, d);
  if (lead) {  // into separate buffers: the other column blocks of this head read the initial n and m
    if (tid < d.Dqk) n_out[(size_t)bh * d.Dqk + tid] = rn;
    if (tid == 0) m_out[bh] = mm;
  }
}

// Two-level alternative to state_fwd_kernel (mlstm_two_level_states): every chunk's own contribution in
// parallel, then the short recurrence over chunks.
//   state_local_kernel, one block per (head, chunk, 64 columns): L_c = sum_j w_j k_j v_j^T and
//     n_c = sum_j w_j k_j (k scaled by 1/sqrt(Dqk), w_j = exp(to_end_j - loc_c)), written into the chunk's
//     slots of Cin and nin;
//   state_scan_kernel, one block per (head, 64 columns), chunk after chunk: the gates' scalars again
//     (eqs 46-48 with one step per chunk), then in place C_c into the slot and C = f C + i L_c, likewise n;
//     the stabiliser entering each chunk into min.
// The same arithmetic as state_fwd_kernel's v2 (C = f C + i sum_j w_j k_j v_j^T), with B H NC Dv/64 blocks
// for the products instead of B H Dv/64.
template <typename T>
__global__ void __launch_bounds__(kThreads)
state_local_kernel(const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ ig,
                   const T* __restrict__ fg, float* __restrict__ Cin, float* __restrict__ nin, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  const StateSmem sh = state_smem_layout(sm, d);
  float *ks = sh.ks, *vs = sh.vs, *igs = sh.igs, *logf = sh.logf, *a = sh.a, *w = sh.w, *sc = sh.sc;
  const int bh = blockIdx.x, c = blockIdx.y, e0 = blockIdx.z * kBV, tid = threadIdx.x, Lc = chunk_len(d, c);
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
  chunk_weights(ig, fg, t0, Lc, igs, logf, a, w, sc, 0.f);  // the scalars are the scan's business
  for (int u = tid; u < Lc * d.Dqk; u += kThreads) ks[u] = to_float(k[t0 * d.Dqk + u]) * (d.scale * w[u / d.Dqk]);
  stage_v_tile(v, t0, Lc, e0, vs, d);
  __syncthreads();
  float rC[kRegs];
#pragma unroll
  for (int r = 0; r < kRegs; ++r) rC[r] = 0.f;
  decay_and_add_outer(rC, 1.f, ks, vs, Lc, d);
  tile_store(rC, Cin + cbase * d.Dv, e0, d);
  if (blockIdx.z == 0 && tid < d.Dqk) {
    float acc = 0.f;
    for (int j = 0; j < Lc; ++j) acc += ks[j * d.Dqk + tid];
    nin[cbase + tid] = acc;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
state_scan_kernel(const T* __restrict__ ig, const T* __restrict__ fg, float* __restrict__ C,
                  const float* __restrict__ n, const float* __restrict__ m, float* __restrict__ n_out,
                  float* __restrict__ m_out, float* __restrict__ Cin, float* __restrict__ nin,
                  float* __restrict__ min_, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);  // (4 kChunk + 4): the chunk's gate quantities and scalars
  float* igs = sm;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* w = a + kChunk;
  float* sc = w + kChunk;
  const int bh = blockIdx.x, e0 = blockIdx.y * kBV, tid = threadIdx.x;
  const bool lead = blockIdx.y == 0;  // the block that also owns n and m
  float rC[kRegs];
  float* Cg = C + (size_t)bh * d.Dqk * d.Dv;
  tile_load(rC, Cg, e0, d);
  const int dd0 = tid / kBV, ee = tid % kBV, stride = (kThreads / kBV) * d.Dv;
  const int nr = e0 + ee < d.Dv ? (d.Dqk - dd0 + kThreads / kBV - 1) / (kThreads / kBV) : 0;  // rows this thread has
  float rn = tid < d.Dqk ? n[(size_t)bh * d.Dqk + tid] : 0.f;
  float mm = m[bh];
  for (int c = 0; c < d.NC; ++c) {
    const int Lc = chunk_len(d, c);
    const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
    chunk_weights(ig, fg, t0, Lc, igs, logf, a, w, sc, mm);
    const float f = sc[0], i = sc[1];
    // in place, element by element (tile_load's layout: element r at row dd0 + r kThreads / kBV, column ee):
    // L_c out of the chunk's slot, the state entering chunk c into it
    float* p = Cin + cbase * d.Dv + (size_t)dd0 * d.Dv + e0 + ee;
#pragma unroll
    for (int r = 0; r < kRegs; ++r, p += stride) {
      if (r < nr) {
        const float l = *p;
        *p = rC[r];
        rC[r] = f * rC[r] + i * l;
      }
    }
    if (lead && tid < d.Dqk) {
      const float nl = nin[cbase + tid];
      nin[cbase + tid] = rn;
      rn = f * rn + i * nl;
    }
    if (lead && tid == 0) min_[(size_t)bh * d.NC + c] = mm;
    mm = sc[2];
    __syncthreads();  // the gate buffers are refilled for the next chunk
  }
  tile_store(rC, Cg, e0, d);
  if (lead) {  // into separate buffers: the other column blocks of this head read the initial n and m
    if (tid < d.Dqk) n_out[(size_t)bh * d.Dqk + tid] = rn;
    if (tid == 0) m_out[bh] = mm;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
out_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ ig,
               const T* __restrict__ fg, const float* __restrict__ Cin, const float* __restrict__ nin,
               const float* __restrict__ min_, T* __restrict__ h, float* __restrict__ mrow,
               float* __restrict__ den, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  float* qs = sm;                       // (kChunk, Dqk)
  float* ks = qs + kChunk * d.Dqk;      // (kChunk, Dqk)
  float* P = ks + kChunk * d.Dqk;       // (kChunk, kChunk): Dtil, then Ct = (q k^T) exp(Dtil - m_row)
  float* igs = P + kChunk * kChunk;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* to_end = a + kChunk;
  float* mr = to_end + kChunk;          // m_row
  float* w0 = mr + kChunk;              // weight of the incoming state in row t
  float* nrm = w0 + kChunk;             // max(|den|, exp(-m_row))
  const int bh = blockIdx.x, c = blockIdx.y, tid = threadIdx.x, Lc = chunk_len(d, c);
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
  const float mi = min_[(size_t)bh * d.NC + c];
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, to_end);
  for (int u = tid; u < Lc * d.Dqk; u += kThreads) {
    qs[u] = to_float(q[t0 * d.Dqk + u]);
    ks[u] = to_float(k[t0 * d.Dqk + u]) * d.scale;
  }
  for (int t = tid; t < Lc; t += kThreads) {
    const float logw = a[t] + mi;  // the incoming state's log weight in row t
    const float mx = fmaxf(dtil_row(t, igs, logf, P + t * kChunk), logw);
    mr[t] = mx;
    w0[t] = expf(logw - mx);
  }
  __syncthreads();
  for (int u = tid; u < Lc * kChunk; u += kThreads) {
    const int t = u / kChunk, j = u % kChunk;
    float ct = 0.f;
    if (j <= t) {
      float qk = 0.f;
      for (int dd = 0; dd < d.Dqk; ++dd) qk += qs[t * d.Dqk + dd] * ks[j * d.Dqk + dd];
      ct = qk * expf(P[u] - mr[t]);
    }
    P[u] = ct;
  }
  __syncthreads();
  for (int t = tid; t < Lc; t += kThreads) {  // eq 11 with the stabilised lower bound
    float s = 0.f, qn = 0.f;
    for (int j = 0; j <= t; ++j) s += P[t * kChunk + j];
    for (int dd = 0; dd < d.Dqk; ++dd) qn += qs[t * d.Dqk + dd] * nin[cbase + dd];
    const float dn_ = s + w0[t] * qn;
    nrm[t] = fmaxf(fabsf(dn_), expf(-mr[t]));
    mrow[t0 + t] = mr[t];
    den[t0 + t] = dn_;
  }
  __syncthreads();
  const float* Cc = Cin + cbase * d.Dv;
  for (int u = tid; u < Lc * d.Dv; u += kThreads) {
    const int t = u / d.Dv, e = u % d.Dv;
    float num = 0.f, qc = 0.f;
    for (int j = 0; j <= t; ++j) num += P[t * kChunk + j] * to_float(v[(t0 + j) * d.Dv + e]);
    for (int dd = 0; dd < d.Dqk; ++dd) qc += qs[t * d.Dqk + dd] * Cc[(size_t)dd * d.Dv + e];
    h[(t0 + t) * d.Dv + e] = from_float<T>((num + w0[t] * qc) / nrm[t]);
  }
}

// The output kernel on tensor cores, for bfloat16 inputs with Dqk a multiple of 16: one block per (head, chunk,
// 64 output columns); q k^T, Ct v and (w0 q) C_in as 16 x 16 x 16 bf16 products with float32 accumulation
// (nvcuda::wmma), the decay and the normaliser in float32 between them. The state C_in enters the product in
// bfloat16. The intra-chunk scores are recomputed by every column block of a chunk.
constexpr int kTile = 16;
constexpr int kBVT = 64;  // output columns per block

__global__ void __launch_bounds__(kThreads)
out_fwd_tc_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                  const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ ig,
                  const __nv_bfloat16* __restrict__ fg, const float* __restrict__ Cin, const float* __restrict__ nin,
                  const float* __restrict__ min_, __nv_bfloat16* __restrict__ h, float* __restrict__ mrow,
                  float* __restrict__ den, Dims d) {
  using namespace nvcuda;
  using bf = __nv_bfloat16;
  XSEQ_DYNAMIC_SMEM(unsigned char, raw);
  const int Dqk = d.Dqk;
  bf* Qs = reinterpret_cast<bf*>(raw);   // (kChunk, Dqk): q, later w0_t q_t
  bf* Ks = Qs + kChunk * Dqk;            // (kChunk, Dqk): k (unscaled: 1/sqrt(Dqk) is applied in float32)
  bf* Cs = Ks + kChunk * Dqk;            // (Dqk, kBVT): this block's columns of C_in
  bf* Vs = Cs + Dqk * kBVT;              // (kChunk, kBVT)
  bf* Cb = Vs + kChunk * kBVT;           // (kChunk, kChunk): Ct in bfloat16
  float* Sf = reinterpret_cast<float*>(Cb + kChunk * kChunk);  // (kChunk, kChunk): q k^T, Ct, then num
  float* Df = Sf + kChunk * kChunk;      // (kChunk, kChunk): Dtil
  float* igs = Df + kChunk * kChunk;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* to_end = a + kChunk;
  float* mr = to_end + kChunk;
  float* w0 = mr + kChunk;
  float* nrm = w0 + kChunk;
  const int bh = blockIdx.x, c = blockIdx.y, e0 = blockIdx.z * kBVT, tid = threadIdx.x, warp = tid / 32;
  const int Lc = chunk_len(d, c);
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * Dqk;
  const float mi = min_[(size_t)bh * d.NC + c];
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, to_end);
  for (int u = tid; u < kChunk * Dqk; u += kThreads) {  // rows past the chunk's end are zeros
    const bool in = u < Lc * Dqk;
    Qs[u] = in ? q[t0 * Dqk + u] : from_float<bf>(0.f);
    Ks[u] = in ? k[t0 * Dqk + u] : from_float<bf>(0.f);
  }
  const float* Cc = Cin + cbase * d.Dv;
  for (int u = tid; u < Dqk * kBVT; u += kThreads) {
    const int dd = u / kBVT, e = e0 + u % kBVT;
    Cs[u] = from_float<bf>(e < d.Dv ? Cc[(size_t)dd * d.Dv + e] : 0.f);
  }
  for (int u = tid; u < kChunk * kBVT; u += kThreads) {
    const int j = u / kBVT, e = e0 + u % kBVT;
    Vs[u] = (j < Lc && e < d.Dv) ? v[(t0 + j) * d.Dv + e] : from_float<bf>(0.f);
  }
  for (int t = tid; t < kChunk; t += kThreads) {
    if (t < Lc) {
      const float logw = a[t] + mi;
      const float mx = fmaxf(dtil_row(t, igs, logf, Df + t * kChunk), logw);
      mr[t] = mx;
      w0[t] = expf(logw - mx);
    } else {
      mr[t] = 0.f;
      w0[t] = 0.f;
    }
  }
  __syncthreads();
  // q k^T on the tiles on and below the diagonal: 10 of 16, two per warp at most
  for (int id = warp; id < 16; id += kThreads / 32) {
    const int ti = id / 4, tj = id % 4;
    if (tj > ti) continue;
    wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float> acc;
    wmma::fill_fragment(acc, 0.f);
    for (int kk = 0; kk < Dqk; kk += kTile) {
      wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf, wmma::col_major> fb;
      wmma::load_matrix_sync(fa, Qs + ti * kTile * Dqk + kk, Dqk);
      wmma::load_matrix_sync(fb, Ks + tj * kTile * Dqk + kk, Dqk);  // k^T: column-major view of Ks
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(Sf + ti * kTile * kChunk + tj * kTile, acc, kChunk, wmma::mem_row_major);
  }
  __syncthreads();
  for (int u = tid; u < kChunk * kChunk; u += kThreads) {  // Ct = (q k^T) exp(Dtil - m_row), causal
    const int t = u / kChunk, j = u % kChunk;
    const float ct = (t < Lc && j <= t) ? Sf[u] * d.scale * expf(Df[u] - mr[t]) : 0.f;
    Sf[u] = ct;
    Cb[u] = from_float<bf>(ct);
  }
  __syncthreads();
  for (int t = tid; t < Lc; t += kThreads) {  // eq 11 with the stabilised lower bound
    float s = 0.f, qn = 0.f;
    for (int j = 0; j <= t; ++j) s += Sf[t * kChunk + j];
    for (int dd = 0; dd < Dqk; ++dd) qn += to_float(Qs[t * Dqk + dd]) * nin[cbase + dd];
    const float dn_ = s + w0[t] * qn;
    nrm[t] = fmaxf(fabsf(dn_), expf(-mr[t]));
    if (blockIdx.z == 0) {
      mrow[t0 + t] = mr[t];
      den[t0 + t] = dn_;
    }
  }
  __syncthreads();
  for (int u = tid; u < kChunk * Dqk; u += kThreads) Qs[u] = from_float<bf>(to_float(Qs[u]) * w0[u / Dqk]);
  __syncthreads();
  // num = Ct v + (w0 q) C_in, 16 tiles of this block's 64 x 64 outputs, two per warp
  for (int id = warp; id < 16; id += kThreads / 32) {
    const int ti = id / 4, tj = id % 4;
    wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float> acc;
    wmma::fill_fragment(acc, 0.f);
    for (int kk = 0; kk <= ti; ++kk) {  // Ct is zero above the diagonal
      wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf, wmma::row_major> fb;
      wmma::load_matrix_sync(fa, Cb + ti * kTile * kChunk + kk * kTile, kChunk);
      wmma::load_matrix_sync(fb, Vs + kk * kTile * kBVT + tj * kTile, kBVT);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    for (int kk = 0; kk < Dqk; kk += kTile) {
      wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf, wmma::row_major> fb;
      wmma::load_matrix_sync(fa, Qs + ti * kTile * Dqk + kk, Dqk);
      wmma::load_matrix_sync(fb, Cs + kk * kBVT + tj * kTile, kBVT);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(Sf + ti * kTile * kChunk + tj * kTile, acc, kChunk, wmma::mem_row_major);
  }
  __syncthreads();
  for (int u = tid; u < Lc * kBVT; u += kThreads) {
    const int t = u / kBVT, cc = u % kBVT, e = e0 + cc;
    if (e < d.Dv) h[(t0 + t) * d.Dv + e] = from_float<bf>(Sf[t * kChunk + cc] / nrm[t]);
  }
}

// Row coefficients of the backward pass: norm, w0, and dd = d loss / d den (zero where the lower bound won).
struct RowGrad {
  float nrm, w0, dd;
};

__device__ __forceinline__ RowGrad row_grad(float a_t, float mi, float mrow, float den, float ddot) {
  RowGrad r;
  const float lb = expf(-mrow);
  r.nrm = fmaxf(fabsf(den), lb);
  r.w0 = expf(a_t + mi - mrow);
  // h = num / |den|: d loss / d den = -(dh . h) / |den| * sign(den)
  r.dd = fabsf(den) > lb ? -ddot / r.nrm * (den > 0.f ? 1.f : -1.f) : 0.f;
  return r;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
state_bwd_kernel(const T* __restrict__ q, const T* __restrict__ fg, const float* __restrict__ dh,
                 const float* __restrict__ ddot, const float* __restrict__ mrow, const float* __restrict__ den,
                 const float* __restrict__ min_, const float* __restrict__ m_last, float* __restrict__ dC,
                 float* __restrict__ dn, float* __restrict__ dCs, float* __restrict__ dns, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  float* qs = sm;                       // (kChunk, Dqk)
  float* gs = qs + kChunk * d.Dqk;      // (kChunk, kBV): w0_t dh_t / norm_t
  float* logf = gs + kChunk * kBV;
  float* a = logf + kChunk;
  float* wd = a + kChunk;               // w0_t dd_t
  float* sc = wd + kChunk;
  const int bh = blockIdx.x, e0 = blockIdx.y * kBV, tid = threadIdx.x;
  const bool lead = blockIdx.y == 0;
  float rC[kRegs];
  float* dCg = dC + (size_t)bh * d.Dqk * d.Dv;
  tile_load(rC, dCg, e0, d);
  float rn = tid < d.Dqk ? dn[(size_t)bh * d.Dqk + tid] : 0.f;
  for (int c = d.NC - 1; c >= 0; --c) {
    const int Lc = chunk_len(d, c);
    const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
    tile_store(rC, dCs + cbase * d.Dv, e0, d);  // the gradient of the state after chunk c (its writers feed it)
    if (lead && tid < d.Dqk) dns[cbase + tid] = rn;
    for (int t = tid; t < Lc; t += kThreads) logf[t] = log_sigmoid(to_float(fg[t0 + t]));
    __syncthreads();
    const float mi = min_[(size_t)bh * d.NC + c];
    if (tid == 0) {
      float s = 0.f;
      for (int t = 0; t < Lc; ++t) a[t] = (s += logf[t]);
      const float m_after = c + 1 < d.NC ? min_[(size_t)bh * d.NC + c + 1] : m_last[bh];
      sc[0] = expf(s + mi - m_after);  // the chunk's f: C_after = f C_in + i C_add
    }
    __syncthreads();
    for (int t = tid; t < Lc; t += kThreads) {
      const RowGrad rg = row_grad(a[t], mi, mrow[t0 + t], den[t0 + t], ddot[t0 + t]);
      wd[t] = rg.w0 * rg.dd;
      a[t] = rg.w0 / rg.nrm;  // a[] is free again: the scale of dh_t
    }
    for (int u = tid; u < Lc * d.Dqk; u += kThreads) qs[u] = to_float(q[t0 * d.Dqk + u]);
    __syncthreads();
    for (int u = tid; u < Lc * kBV; u += kThreads) {
      const int t = u / kBV, e = e0 + u % kBV;
      gs[u] = e < d.Dv ? a[t] * dh[(t0 + t) * d.Dv + e] : 0.f;
    }
    __syncthreads();
    // dC_in = f dC_after + sum_t q_t (w0_t dh_t / norm_t)^T, dn_in = f dn_after + sum_t w0_t dd_t q_t
    // step by step: the thread's column ee of gs loaded once, its rows of q broadcast across the warp; rows past
    // Dqk (when Dqk < kMLSTMMaxDqk) read other shared memory and are never stored
    const float f = sc[0];
    decay_and_add_outer(rC, f, qs, gs, Lc, d);
    if (tid < d.Dqk) {
      float acc = 0.f;
      for (int t = 0; t < Lc; ++t) acc += wd[t] * qs[t * d.Dqk + tid];
      rn = f * rn + acc;
    }
    __syncthreads();
  }
  tile_store(rC, dCg, e0, d);
  if (lead && tid < d.Dqk) dn[(size_t)bh * d.Dqk + tid] = rn;
}

// The backward pass's per-chunk prologue: gates, q and k / sqrt(Dqk) in float32, and row t of the decay
// matrix P[t, j] = exp(Dtil[t, j] - m_row_t) for j <= t (else 0), for t < Lc.
template <typename T>
__device__ void backward_prologue(const T* q, const T* k, const T* ig, const T* fg, const float* mrow, size_t t0,
                                  int Lc, const Dims& d, float* qs, float* ks, float* P, float* igs, float* logf,
                                  float* a, float* to_end) {
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, to_end);
  for (int u = threadIdx.x; u < Lc * d.Dqk; u += blockDim.x) {
    qs[u] = to_float(q[t0 * d.Dqk + u]);
    ks[u] = to_float(k[t0 * d.Dqk + u]) * d.scale;
  }
  for (int t = threadIdx.x; t < Lc; t += blockDim.x) {
    float* row = P + t * kChunk;
    const float mr = mrow[t0 + t];
    dtil_row(t, igs, logf, row);
    for (int j = 0; j < kChunk; ++j) row[j] = j <= t ? expf(row[j] - mr) : 0.f;
  }
}

struct QkDnv {
  float qk, dnv;  // q_t . k_j and dh_t . v_j
};

template <typename T>
__device__ __forceinline__ QkDnv qk_dnv(int t, int j, const float* qs, const float* ks, const float* dh,
                                        const T* v, size_t t0, const Dims& d) {
  QkDnv r{0.f, 0.f};
  for (int dd = 0; dd < d.Dqk; ++dd) r.qk += qs[t * d.Dqk + dd] * ks[j * d.Dqk + dd];
  for (int e = 0; e < d.Dv; ++e) r.dnv += dh[(t0 + t) * d.Dv + e] * to_float(v[(t0 + j) * d.Dv + e]);
  return r;
}

// ddot_t = dh_t . h_t with h_t recomputed in float32 from the saved row stabilisers and states, so that the
// backward pass is consistent in itself whichever output kernel (SIMT or tensor cores) ran forward:
// h_t = (sum_{j <= t} Ct[t, j] v_j + w0_t q_t^T C_in) / norm_t, so
// ddot_t = (sum_{j <= t} P[t, j] (q_t . k_j) (dh_t . v_j) + w0_t sum_e (q_t^T C_in)[e] dh_t[e]) / norm_t.
// Register tiles of 4 x 4 over shared-memory operands stored transposed (q^T, k^T, and 16-step slices of dh^T
// and v^T, rows padded to kLd floats), so a warp's loads are float4s without bank conflicts; q^T C_in reads
// C_in's rows from global memory as float4s along e.
constexpr int kLd = kChunk + 4;   // padded row of a transposed (., kChunk) operand
constexpr int kSlice = 16;        // rows of dh^T and v^T staged at a time

size_t ddot_smem(int Dqk) {
  return ((size_t)2 * Dqk * kLd + 2 * kSlice * kLd + (size_t)kChunk * kChunk + 16 * kChunk + 4 * kChunk) *
         sizeof(float);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
ddot_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ ig,
            const T* __restrict__ fg, const float* __restrict__ dh, const float* __restrict__ mrow,
            const float* __restrict__ den, const float* __restrict__ Cin, const float* __restrict__ min_,
            float* __restrict__ ddot, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  float* qT = sm;                       // (Dqk, kLd): q[t, dd] at qT[dd kLd + t], zero past Lc
  float* kT = qT + (size_t)d.Dqk * kLd;  // (Dqk, kLd): k[j, dd] / sqrt(Dqk)
  float* dT = kT + (size_t)d.Dqk * kLd;  // (kSlice, kLd): dh[t, e0 + s]
  float* vT = dT + kSlice * kLd;        // (kSlice, kLd): v[j, e0 + s]
  float* P = vT + kSlice * kLd;         // (kChunk, kChunk): exp(Dtil[t, j] - m_row[t]) for j <= t, else 0
  float* part = P + kChunk * kChunk;    // (16, kChunk): partial sums of the state term
  float* igs = part + 16 * kChunk;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* to_end = a + kChunk;
  const int bh = blockIdx.x, c = blockIdx.y, tid = threadIdx.x, Lc = chunk_len(d, c);
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
  const float mi = min_[(size_t)bh * d.NC + c];
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, to_end);
  for (int u = tid; u < kChunk * d.Dqk; u += kThreads) {
    const int t = u / d.Dqk, dd = u % d.Dqk;
    qT[(size_t)dd * kLd + t] = t < Lc ? to_float(q[(t0 + t) * d.Dqk + dd]) : 0.f;
    kT[(size_t)dd * kLd + t] = t < Lc ? to_float(k[(t0 + t) * d.Dqk + dd]) * d.scale : 0.f;
  }
  for (int t = tid; t < kChunk; t += kThreads) {
    float* row = P + t * kChunk;
    if (t < Lc) {
      const float mr = mrow[t0 + t];
      dtil_row(t, igs, logf, row);
      for (int j = 0; j < kChunk; ++j) row[j] = j <= t ? expf(row[j] - mr) : 0.f;
    } else {
      for (int j = 0; j < kChunk; ++j) row[j] = 0.f;
    }
  }
  __syncthreads();
  // intra-chunk term: thread (ti, tj) owns rows 4 ti .. 4 ti + 3 and columns 4 tj .. 4 tj + 3 of the 64 x 64 block
  const int ti = tid >> 4, tj = tid & 15;
  float s[4][4], dv[4][4];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) s[r][cc] = dv[r][cc] = 0.f;
  for (int dd = 0; dd < d.Dqk; ++dd) {
    const float4 qa = *reinterpret_cast<const float4*>(qT + (size_t)dd * kLd + 4 * ti);
    const float4 kb = *reinterpret_cast<const float4*>(kT + (size_t)dd * kLd + 4 * tj);
    const float qr[4] = {qa.x, qa.y, qa.z, qa.w}, kr[4] = {kb.x, kb.y, kb.z, kb.w};
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) s[r][cc] += qr[r] * kr[cc];
  }
  for (int e0 = 0; e0 < d.Dv; e0 += kSlice) {
    __syncthreads();  // the previous slice is consumed
    for (int u = tid; u < kChunk * kSlice; u += kThreads) {
      const int t = u / kSlice, sl = u % kSlice, e = e0 + sl;
      const bool in = t < Lc && e < d.Dv;
      dT[sl * kLd + t] = in ? dh[(t0 + t) * d.Dv + e] : 0.f;
      vT[sl * kLd + t] = in ? to_float(v[(t0 + t) * d.Dv + e]) : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int sl = 0; sl < kSlice; ++sl) {
      const float4 da = *reinterpret_cast<const float4*>(dT + sl * kLd + 4 * ti);
      const float4 vb = *reinterpret_cast<const float4*>(vT + sl * kLd + 4 * tj);
      const float dr[4] = {da.x, da.y, da.z, da.w}, vr[4] = {vb.x, vb.y, vb.z, vb.w};
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int cc = 0; cc < 4; ++cc) dv[r][cc] += dr[r] * vr[cc];
    }
  }
  float intra[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const float* pr = P + (4 * ti + r) * kChunk + 4 * tj;
    float x = 0.f;
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) x += pr[cc] * s[r][cc] * dv[r][cc];
    // the row's sum over the 16 column threads (lanes tj of one half-warp)
    for (int off = 8; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
    intra[r] = x;
  }
  // state term: sum_e (q_t^T C_in)[e] dh_t[e]; thread (tr, te) owns rows 4 tr .. 4 tr + 3 and column groups
  // 4 te, 4 te + 64, ... of e; partial sums per te go to part[te, t], then each row's 16 partials are added
  const float* Cc = Cin + cbase * d.Dv;
  const int tr = tid & 15, te = tid >> 4;
  float st[4] = {0.f, 0.f, 0.f, 0.f};
  for (int eb = 4 * te; eb < d.Dv; eb += 64) {
    float y[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) y[r][cc] = 0.f;
    const bool vec = eb + 3 < d.Dv && (d.Dv & 3) == 0;
    for (int dd = 0; dd < d.Dqk; ++dd) {
      const float4 qa = *reinterpret_cast<const float4*>(qT + (size_t)dd * kLd + 4 * tr);
      float cr[4];
      if (vec) {
        const float4 cv = *reinterpret_cast<const float4*>(Cc + (size_t)dd * d.Dv + eb);
        cr[0] = cv.x, cr[1] = cv.y, cr[2] = cv.z, cr[3] = cv.w;
      } else {
#pragma unroll
        for (int cc = 0; cc < 4; ++cc) cr[cc] = eb + cc < d.Dv ? Cc[(size_t)dd * d.Dv + eb + cc] : 0.f;
      }
      const float qr[4] = {qa.x, qa.y, qa.z, qa.w};
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int cc = 0; cc < 4; ++cc) y[r][cc] += qr[r] * cr[cc];
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int t = 4 * tr + r;
      if (t < Lc) {
#pragma unroll
        for (int cc = 0; cc < 4; ++cc)
          if (eb + cc < d.Dv) st[r] += y[r][cc] * dh[(t0 + t) * d.Dv + eb + cc];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) part[te * kChunk + 4 * tr + r] = st[r];
  __syncthreads();
  if (tj == 0) {  // lane 0 of each half-warp holds its rows' intra-chunk sums
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int t = 4 * ti + r;
      if (t < Lc) {
        float state = 0.f;
        for (int g = 0; g < 16; ++g) state += part[g * kChunk + t];
        const float mr = mrow[t0 + t];
        const float nrm = fmaxf(fabsf(den[t0 + t]), expf(-mr));
        ddot[t0 + t] = (intra[r] + expf(a[t] + mi - mr) * state) / nrm;
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
grad_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ ig,
            const T* __restrict__ fg, const float* __restrict__ dh, const float* __restrict__ ddot,
            const float* __restrict__ mrow, const float* __restrict__ den, const float* __restrict__ Cin,
            const float* __restrict__ nin, const float* __restrict__ min_, const float* __restrict__ m_last,
            const float* __restrict__ dCs, const float* __restrict__ dns, float* __restrict__ dq,
            float* __restrict__ dk, float* __restrict__ dv, Dims d) {
  XSEQ_DYNAMIC_SMEM(float, sm);
  float* qs = sm;                       // (kChunk, Dqk)
  float* ks = qs + kChunk * d.Dqk;      // (kChunk, Dqk)
  float* P = ks + kChunk * d.Dqk;       // (kChunk, kChunk): exp(Dtil - m_row), then Ct
  float* S = P + kChunk * kChunk;       // (kChunk, kChunk): q k^T, then dS = dCt * exp(Dtil - m_row)
  float* igs = S + kChunk * kChunk;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* E = a + kChunk;                // to_end, then the writer weights exp(to_end - m_after)
  float* rs = E + kChunk;               // 1 / norm_t
  float* w0 = rs + kChunk;
  float* dds = w0 + kChunk;
  const int bh = blockIdx.x, c = blockIdx.y, tid = threadIdx.x, Lc = chunk_len(d, c);
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * d.Dqk;
  const float mi = min_[(size_t)bh * d.NC + c];
  const float m_after = c + 1 < d.NC ? min_[(size_t)bh * d.NC + c + 1] : m_last[bh];
  backward_prologue(q, k, ig, fg, mrow, t0, Lc, d, qs, ks, P, igs, logf, a, E);
  for (int t = tid; t < Lc; t += kThreads) {
    const RowGrad rg = row_grad(a[t], mi, mrow[t0 + t], den[t0 + t], ddot[t0 + t]);
    rs[t] = 1.f / rg.nrm;
    w0[t] = rg.w0;
    dds[t] = rg.dd;
    E[t] = expf(E[t] - m_after);
  }
  __syncthreads();
  for (int u = tid; u < Lc * kChunk; u += kThreads) {
    const int t = u / kChunk, j = u % kChunk;
    const QkDnv r = j <= t ? qk_dnv(t, j, qs, ks, dh, v, t0, d) : QkDnv{0.f, 0.f};
    const float p = P[u];
    // dCt = dN_t . v_j + dd_t with dN_t = dh_t / norm_t; Ct = qk p; dS = dCt p
    S[u] = j <= t ? (r.dnv * rs[t] + dds[t]) * p : 0.f;
    P[u] = r.qk * p;
  }
  __syncthreads();
  const float* Cc = Cin + cbase * d.Dv;
  const float* dCc = dCs + cbase * d.Dv;
  for (int u = tid; u < Lc * d.Dqk; u += kThreads) {
    const int t = u / d.Dqk, dd = u % d.Dqk;  // t is a reader for dq and a writer for dk
    float aq = 0.f, ak = 0.f, cq = 0.f, ck = 0.f;
    for (int j = 0; j <= t; ++j) aq += S[t * kChunk + j] * ks[j * d.Dqk + dd];
    for (int r = t; r < Lc; ++r) ak += S[r * kChunk + t] * qs[r * d.Dqk + dd];
    for (int e = 0; e < d.Dv; ++e) {
      cq += Cc[(size_t)dd * d.Dv + e] * dh[(t0 + t) * d.Dv + e];
      ck += dCc[(size_t)dd * d.Dv + e] * to_float(v[(t0 + t) * d.Dv + e]);
    }
    dq[(t0 + t) * d.Dqk + dd] = aq + w0[t] * (cq * rs[t] + dds[t] * nin[cbase + dd]);
    dk[(t0 + t) * d.Dqk + dd] = ak + E[t] * (ck + dns[cbase + dd]);
  }
  for (int u = tid; u < Lc * d.Dv; u += kThreads) {
    const int j = u / d.Dv, e = u % d.Dv;
    float av = 0.f, cv = 0.f;
    for (int t = j; t < Lc; ++t) av += P[t * kChunk + j] * dh[(t0 + t) * d.Dv + e] * rs[t];
    for (int dd = 0; dd < d.Dqk; ++dd) cv += dCc[(size_t)dd * d.Dv + e] * ks[j * d.Dqk + dd];
    dv[(t0 + j) * d.Dv + e] = av + E[j] * cv;
  }
}

// dq, dk, dv of a chunk on tensor cores, for bfloat16 inputs with Dqk and Dv multiples of 16: grad_kernel's
// products as 16 x 16 x 16 bf16 products with float32 accumulation. The scores, the decay and dS stay float32
// until they enter a product (as bfloat16); the row scalings of the state parts are folded into the A operands
// (w0_t dh_t / norm_t, E_j k_j, E_j v_j) and the rank-1 terms (w0_t dd_t n_in, E_j dn) ride as one extra
// 16-wide slice. C_in and the state gradients enter as bfloat16 copies. Each warp keeps its dq and dv tiles in
// registers from the intra-chunk phase to the state phase.
constexpr int kMaxTilesPerWarp = kChunk / kTile * (kMLSTMMaxDqk / kTile) / (kThreads / 32);  // 8

// A 16 x 16 float tile into rows [0, rows) of a row-major float matrix, through this warp's scratch (the rows
// past the chunk's end belong to the next head and must not be written).
template <class Frag>
__device__ __forceinline__ void store_tile_rows(const Frag& acc, float* dst, int ld, int rows, float* scratch) {
  using namespace nvcuda;
  wmma::store_matrix_sync(scratch, acc, kTile, wmma::mem_row_major);
  __syncwarp();
  for (int i = threadIdx.x % 32; i < kTile * kTile; i += 32)
    if (i / kTile < rows) dst[(i / kTile) * ld + i % kTile] = scratch[i];
  __syncwarp();
}

__global__ void __launch_bounds__(kThreads)
grad_tc_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
               const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ ig,
               const __nv_bfloat16* __restrict__ fg, const float* __restrict__ dh, const float* __restrict__ ddot,
               const float* __restrict__ mrow, const float* __restrict__ den,
               const __nv_bfloat16* __restrict__ CinB, const float* __restrict__ nin, const float* __restrict__ min_,
               const float* __restrict__ m_last, const __nv_bfloat16* __restrict__ dCB,
               const float* __restrict__ dns, float* __restrict__ dq, float* __restrict__ dk,
               float* __restrict__ dv, Dims d) {
  using namespace nvcuda;
  using bf = __nv_bfloat16;
  using FragA = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf, wmma::row_major>;
  using FragAt = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf, wmma::col_major>;
  using FragB = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf, wmma::row_major>;
  using FragBt = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf, wmma::col_major>;
  using Acc = wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float>;
  XSEQ_DYNAMIC_SMEM(unsigned char, raw);
  const int Dqk = d.Dqk, Dv = d.Dv, Dmax = Dqk > Dv ? Dqk : Dv;
  bf* Qs = reinterpret_cast<bf*>(raw);    // (kChunk, Dqk)
  bf* Ks = Qs + kChunk * Dqk;             // (kChunk, Dqk): k unscaled, later E_j k_j / sqrt(Dqk)
  bf* Vs = Ks + kChunk * Dqk;             // (kChunk, Dv): v, later E_j v_j
  bf* Hs = Vs + kChunk * Dv;              // (kChunk, Dv): dh, later w0_t dh_t / norm_t
  bf* dSb = Hs + kChunk * Dv;             // (kChunk, kChunk): dS
  bf* Cnb = dSb + kChunk * kChunk;        // (kChunk, kChunk): Ct / norm_t
  bf* Ap = Cnb + kChunk * kChunk;         // (kChunk, kTile): the rank-1 slice's column
  bf* Bp = Ap + kChunk * kTile;           // (kTile, Dmax): the rank-1 slice's row
  float* Sf = reinterpret_cast<float*>(Bp + kTile * Dmax);  // (kChunk, kChunk): q k^T
  float* Nf = Sf + kChunk * kChunk;       // (kChunk, kChunk): dh_t . v_j
  float* Pf = Nf + kChunk * kChunk;       // (kChunk, kChunk): exp(Dtil - m_row)
  float* scratch = Pf + kChunk * kChunk;  // (warps, kTile, kTile)
  float* igs = scratch + (kThreads / 32) * kTile * kTile;
  float* logf = igs + kChunk;
  float* a = logf + kChunk;
  float* E = a + kChunk;
  float* rs = E + kChunk;
  float* w0 = rs + kChunk;
  float* dds = w0 + kChunk;
  const int bh = blockIdx.x, c = blockIdx.y, tid = threadIdx.x, warp = tid / 32, nwarps = kThreads / 32;
  const int Lc = chunk_len(d, c), TQ = Dqk / kTile, TV = Dv / kTile, TL = kChunk / kTile;
  const size_t t0 = (size_t)bh * d.T + (size_t)c * kChunk, cbase = ((size_t)bh * d.NC + c) * Dqk;
  const float mi = min_[(size_t)bh * d.NC + c];
  const float m_after = c + 1 < d.NC ? min_[(size_t)bh * d.NC + c + 1] : m_last[bh];
  float* ws = scratch + warp * kTile * kTile;
  chunk_gates(ig, fg, t0, Lc, igs, logf, a, E);
  const bf zero = from_float<bf>(0.f);
  for (int u = tid; u < kChunk * Dqk; u += kThreads) {  // rows past the chunk's end are zeros
    const bool in = u < Lc * Dqk;
    Qs[u] = in ? q[t0 * Dqk + u] : zero;
    Ks[u] = in ? k[t0 * Dqk + u] : zero;
  }
  for (int u = tid; u < kChunk * Dv; u += kThreads) {
    const bool in = u < Lc * Dv;
    Vs[u] = in ? v[t0 * Dv + u] : zero;
    Hs[u] = from_float<bf>(in ? dh[t0 * Dv + u] : 0.f);
  }
  for (int t = tid; t < kChunk; t += kThreads) {
    float* row = Pf + t * kChunk;
    if (t < Lc) {
      const float mr = mrow[t0 + t];
      dtil_row(t, igs, logf, row);
      for (int j = 0; j < kChunk; ++j) row[j] = j <= t ? expf(row[j] - mr) : 0.f;
      const RowGrad rg = row_grad(a[t], mi, mr, den[t0 + t], ddot[t0 + t]);
      rs[t] = 1.f / rg.nrm;
      w0[t] = rg.w0;
      dds[t] = rg.dd;
      E[t] = expf(E[t] - m_after);
    } else {
      for (int j = 0; j < kChunk; ++j) row[j] = 0.f;
      rs[t] = w0[t] = dds[t] = E[t] = 0.f;
    }
  }
  __syncthreads();
  // q k^T into Sf and dh v^T into Nf, on and below the diagonal
  for (int id = warp; id < 2 * TL * TL; id += nwarps) {
    const int ti = (id % (TL * TL)) / TL, tj = id % TL;
    if (tj > ti) continue;
    const bool is_qk = id < TL * TL;
    const bf* A = is_qk ? Qs : Hs;
    const bf* Bm = is_qk ? Ks : Vs;
    const int D = is_qk ? Dqk : Dv;
    Acc acc;
    wmma::fill_fragment(acc, 0.f);
    for (int kk = 0; kk < D; kk += kTile) {
      FragA fa;
      FragBt fb;  // (k v)^T: the column-major view of the row-major K or V
      wmma::load_matrix_sync(fa, A + ti * kTile * D + kk, D);
      wmma::load_matrix_sync(fb, Bm + tj * kTile * D + kk, D);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync((is_qk ? Sf : Nf) + ti * kTile * kChunk + tj * kTile, acc, kChunk,
                            wmma::mem_row_major);
  }
  __syncthreads();
  for (int u = tid; u < kChunk * kChunk; u += kThreads) {  // Ct / norm and dS = (dh.v / norm + dd) p, causal
    const int t = u / kChunk, j = u % kChunk;
    const bool on = t < Lc && j <= t;
    const float p = Pf[u];
    Cnb[u] = from_float<bf>(on ? Sf[u] * d.scale * p * rs[t] : 0.f);
    dSb[u] = from_float<bf>(on ? (Nf[u] * rs[t] + dds[t]) * p : 0.f);
  }
  __syncthreads();
  // intra-chunk parts: dq = scale dS k (over j <= t), dv = (Ct / norm)^T dh (over t >= j)
  Acc accq[kMaxTilesPerWarp], accv[kMaxTilesPerWarp];
  for (int n = 0, id = warp; id < TL * TQ; id += nwarps, ++n) {
    const int ti = id / TQ, td = id % TQ;
    wmma::fill_fragment(accq[n], 0.f);
    for (int kk = 0; kk <= ti; ++kk) {
      FragA fa;
      FragB fb;
      wmma::load_matrix_sync(fa, dSb + ti * kTile * kChunk + kk * kTile, kChunk);
      wmma::load_matrix_sync(fb, Ks + kk * kTile * Dqk + td * kTile, Dqk);
      wmma::mma_sync(accq[n], fa, fb, accq[n]);
    }
    for (int i = 0; i < accq[n].num_elements; ++i) accq[n].x[i] *= d.scale;  // the scaled k
  }
  for (int n = 0, id = warp; id < TL * TV; id += nwarps, ++n) {
    const int tj = id / TV, te = id % TV;
    wmma::fill_fragment(accv[n], 0.f);
    for (int kk = tj; kk < TL; ++kk) {
      FragAt fa;  // (Ct / norm)^T: the column-major view of Cnb
      FragB fb;
      wmma::load_matrix_sync(fa, Cnb + kk * kTile * kChunk + tj * kTile, kChunk);
      wmma::load_matrix_sync(fb, Hs + kk * kTile * Dv + te * kTile, Dv);
      wmma::mma_sync(accv[n], fa, fb, accv[n]);
    }
  }
  __syncthreads();
  // fold the row scalings of the state parts into the operands; the rank-1 slice of dq: w0_t dd_t n_in
  for (int u = tid; u < kChunk * Dv; u += kThreads) {
    const int t = u / Dv;
    Hs[u] = from_float<bf>(to_float(Hs[u]) * w0[t] * rs[t]);
    Vs[u] = from_float<bf>(to_float(Vs[u]) * E[t]);
  }
  for (int u = tid; u < kChunk * Dqk; u += kThreads)  // E_j times the scaled k
    Ks[u] = from_float<bf>(to_float(Ks[u]) * (E[u / Dqk] * d.scale));
  for (int u = tid; u < kChunk * kTile; u += kThreads)
    Ap[u] = from_float<bf>(u % kTile == 0 ? w0[u / kTile] * dds[u / kTile] : 0.f);
  for (int u = tid; u < kTile * Dmax; u += kThreads)
    Bp[u] = from_float<bf>(u < Dqk ? nin[cbase + u] : 0.f);
  __syncthreads();
  const bf* Cc = CinB + cbase * Dv;
  const bf* dCc = dCB + cbase * Dv;
  // dq += (w0 dh / norm) C_in^T + w0 dd n_in
  for (int n = 0, id = warp; id < TL * TQ; id += nwarps, ++n) {
    const int ti = id / TQ, td = id % TQ;
    for (int ee = 0; ee < Dv; ee += kTile) {
      FragA fa;
      FragBt fb;  // C_in^T: the column-major view of C_in's rows td
      wmma::load_matrix_sync(fa, Hs + ti * kTile * Dv + ee, Dv);
      wmma::load_matrix_sync(fb, Cc + (size_t)td * kTile * Dv + ee, Dv);
      wmma::mma_sync(accq[n], fa, fb, accq[n]);
    }
    FragA fa;
    FragB fb;
    wmma::load_matrix_sync(fa, Ap + ti * kTile * kTile, kTile);
    wmma::load_matrix_sync(fb, Bp + td * kTile, Dmax);
    wmma::mma_sync(accq[n], fa, fb, accq[n]);
    const int rows = min(kTile, Lc - ti * kTile);
    if (rows > 0) store_tile_rows(accq[n], dq + (t0 + ti * kTile) * Dqk + td * kTile, Dqk, rows, ws);
  }
  // dv += (E k) dC
  for (int n = 0, id = warp; id < TL * TV; id += nwarps, ++n) {
    const int tj = id / TV, te = id % TV;
    for (int dd = 0; dd < Dqk; dd += kTile) {
      FragA fa;
      FragB fb;
      wmma::load_matrix_sync(fa, Ks + tj * kTile * Dqk + dd, Dqk);
      wmma::load_matrix_sync(fb, dCc + (size_t)dd * Dv + te * kTile, Dv);
      wmma::mma_sync(accv[n], fa, fb, accv[n]);
    }
    const int rows = min(kTile, Lc - tj * kTile);
    if (rows > 0) store_tile_rows(accv[n], dv + (t0 + tj * kTile) * Dv + te * kTile, Dv, rows, ws);
  }
  __syncthreads();
  // the rank-1 slice of dk: E_j dn
  for (int u = tid; u < kChunk * kTile; u += kThreads)
    Ap[u] = from_float<bf>(u % kTile == 0 ? E[u / kTile] : 0.f);
  for (int u = tid; u < kTile * Dmax; u += kThreads)
    Bp[u] = from_float<bf>(u < Dqk ? dns[cbase + u] : 0.f);
  __syncthreads();
  // dk = dS^T q (over t >= j) + (E v) dC^T + E dn
  for (int id = warp; id < TL * TQ; id += nwarps) {
    const int tj = id / TQ, td = id % TQ;
    Acc acc;
    wmma::fill_fragment(acc, 0.f);
    for (int kk = tj; kk < TL; ++kk) {
      FragAt fa;  // dS^T: the column-major view of dSb
      FragB fb;
      wmma::load_matrix_sync(fa, dSb + kk * kTile * kChunk + tj * kTile, kChunk);
      wmma::load_matrix_sync(fb, Qs + kk * kTile * Dqk + td * kTile, Dqk);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    for (int ee = 0; ee < Dv; ee += kTile) {
      FragA fa;
      FragBt fb;  // dC^T
      wmma::load_matrix_sync(fa, Vs + tj * kTile * Dv + ee, Dv);
      wmma::load_matrix_sync(fb, dCc + (size_t)td * kTile * Dv + ee, Dv);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    FragA fa;
    FragB fb;
    wmma::load_matrix_sync(fa, Ap + tj * kTile * kTile, kTile);
    wmma::load_matrix_sync(fb, Bp + td * kTile, Dmax);
    wmma::mma_sync(acc, fa, fb, acc);
    const int rows = min(kTile, Lc - tj * kTile);
    if (rows > 0) store_tile_rows(acc, dk + (t0 + tj * kTile) * Dqk + td * kTile, Dqk, rows, ws);
  }
}

__global__ void to_bf16_kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] = from_float<__nv_bfloat16>(x[i]);
}

cudaError_t smem_optin(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int dev = 0, limit = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (err != cudaSuccess) return err;
  if (bytes > (size_t)limit) return cudaErrorInvalidValue;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

size_t out_tc_smem(int Dqk) {
  return ((size_t)2 * kChunk * Dqk + (size_t)Dqk * kBVT + kChunk * kBVT + kChunk * kChunk) * 2 +
         ((size_t)2 * kChunk * kChunk + 7 * kChunk) * sizeof(float);
}
size_t state_smem(int Dqk) { return ((size_t)kChunk * Dqk + kChunk * kBV + 4 * kChunk + 4) * sizeof(float); }
size_t out_smem(int Dqk) { return ((size_t)2 * kChunk * Dqk + kChunk * kChunk + 7 * kChunk) * sizeof(float); }
size_t grad_tc_smem(int Dqk, int Dv) {
  const size_t Dmax = Dqk > Dv ? Dqk : Dv;
  return (2 * (size_t)kChunk * Dqk + 2 * (size_t)kChunk * Dv + 2 * kChunk * kChunk + kChunk * kTile + kTile * Dmax) *
             2 +
         (3 * (size_t)kChunk * kChunk + (kThreads / 32) * kTile * kTile + 7 * kChunk) * sizeof(float);
}

bool fits(size_t bytes) {
  int dev = 0, limit = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) return false;
  return bytes <= (size_t)limit;
}

size_t grad_smem(int Dqk) { return ((size_t)2 * kChunk * Dqk + 2 * kChunk * kChunk + 7 * kChunk) * sizeof(float); }

bool bad_dims(int B, int H, int T, int Dqk, int Dv) {
  return B < 1 || H < 1 || T < 1 || Dqk < 1 || Dv < 1 || Dqk > kMLSTMMaxDqk;
}

Dims dims(int H, int T, int Dqk, int Dv) {
  return Dims{H, T, Dqk, Dv, (T + kChunk - 1) / kChunk, 1.f / sqrtf((float)Dqk)};
}

// The sequence inputs of either pass, typed.
template <typename T>
struct Seq {
  const T *q, *k, *v, *ig, *fg;
  template <class Args>
  explicit Seq(const Args& a)
      : q(static_cast<const T*>(a.q)), k(static_cast<const T*>(a.k)), v(static_cast<const T*>(a.v)),
        ig(static_cast<const T*>(a.igate)), fg(static_cast<const T*>(a.fgate)) {}
};

bool g_two_level_states = false;

template <typename T>
cudaError_t states_impl(const MLSTMChunkStates& a, int B, int H, int T_, int Dqk, int Dv, cudaStream_t stream) {
  const Dims d = dims(H, T_, Dqk, Dv);
  cudaError_t err;
  if (g_two_level_states) {
    const T* k = static_cast<const T*>(a.k);
    const T* v = static_cast<const T*>(a.v);
    const T* ig = static_cast<const T*>(a.igate);
    const T* fg = static_cast<const T*>(a.fgate);
    auto kl = state_local_kernel<T>;
    if ((err = smem_optin((const void*)kl, state_smem(Dqk))) != cudaSuccess) return err;
    XSEQ_LAUNCH(kl, dim3(B * H, d.NC, (Dv + kBV - 1) / kBV), dim3(kThreads), state_smem(Dqk), stream)(
        k, v, ig, fg, a.Cin, a.nin, d);
    XSEQ_LAUNCH(state_scan_kernel<T>, dim3(B * H, (Dv + kBV - 1) / kBV), dim3(kThreads),
                (4 * kChunk + 4) * sizeof(float), stream)(
        ig, fg, a.C, a.n, a.m, a.n_out, a.m_out, a.Cin, a.nin, a.min, d);
    return cudaGetLastError();
  }
  auto k1 = state_fwd_kernel<T>;
  if ((err = smem_optin((const void*)k1, state_smem(Dqk))) != cudaSuccess) return err;
  XSEQ_LAUNCH(k1, dim3(B * H, (Dv + kBV - 1) / kBV), dim3(kThreads), state_smem(Dqk), stream)(
      static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<const T*>(a.igate),
      static_cast<const T*>(a.fgate), a.C, a.n, a.m, a.n_out, a.m_out, a.Cin, a.nin, a.min, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t forward_impl(const MLSTMChunkFwd& a, int B, int H, int T_, int Dqk, int Dv, cudaStream_t stream) {
  const Dims d = dims(H, T_, Dqk, Dv);
  const auto [q, k, v, ig, fg] = Seq<T>(a);
  auto k2 = out_fwd_kernel<T>;
  const MLSTMChunkStates s{a.k, a.v, a.igate, a.fgate, a.C, a.n, a.m, a.n_out, a.m_out, a.Cin, a.nin, a.min};
  cudaError_t err;
  if ((err = states_impl<T>(s, B, H, T_, Dqk, Dv, stream)) != cudaSuccess) return err;
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    if (Dqk % kTile == 0 && !a.simt) {  // tensor cores
      auto k3 = out_fwd_tc_kernel;
      if ((err = smem_optin((const void*)k3, out_tc_smem(Dqk))) != cudaSuccess) return err;
      XSEQ_LAUNCH(k3, dim3(B * H, d.NC, (Dv + kBVT - 1) / kBVT), dim3(kThreads), out_tc_smem(Dqk), stream)(
          q, k, v, ig, fg, a.Cin, a.nin, a.min, static_cast<T*>(a.h), a.mrow, a.den, d);
      return cudaGetLastError();
    }
  }
  if ((err = smem_optin((const void*)k2, out_smem(Dqk))) != cudaSuccess) return err;
  XSEQ_LAUNCH(k2, dim3(B * H, d.NC), dim3(kThreads), out_smem(Dqk), stream)(
      q, k, v, ig, fg, a.Cin, a.nin, a.min, static_cast<T*>(a.h), a.mrow, a.den, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_impl(const MLSTMChunkBwd& a, int B, int H, int T_, int Dqk, int Dv, cudaStream_t stream) {
  const Dims d = dims(H, T_, Dqk, Dv);
  const auto [q, k, v, ig, fg] = Seq<T>(a);
  auto k2 = ddot_kernel<T>;
  auto k3 = state_bwd_kernel<T>;
  auto k4 = grad_kernel<T>;
  cudaError_t err;
  if ((err = smem_optin((const void*)k2, ddot_smem(Dqk))) != cudaSuccess) return err;
  if ((err = smem_optin((const void*)k3, state_smem(Dqk))) != cudaSuccess) return err;
  if ((err = smem_optin((const void*)k4, grad_smem(Dqk))) != cudaSuccess) return err;
  XSEQ_LAUNCH(k2, dim3(B * H, d.NC), dim3(kThreads), ddot_smem(Dqk), stream)(
      q, k, v, ig, fg, a.dh, a.mrow, a.den, a.Cin, a.min, a.ddot, d);
  XSEQ_LAUNCH(k3, dim3(B * H, (Dv + kBV - 1) / kBV), dim3(kThreads), state_smem(Dqk), stream)(
      q, fg, a.dh, a.ddot, a.mrow, a.den, a.min, a.m_last, a.dC, a.dn, a.dCs, a.dns, d);
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    if (mlstm_chunk_bwd_tc(MDType::bf16, Dqk, Dv) && !a.simt && fits(grad_tc_smem(Dqk, Dv))) {  // tensor cores
      using bf = __nv_bfloat16;
      auto k5 = grad_tc_kernel;
      if ((err = smem_optin((const void*)k5, grad_tc_smem(Dqk, Dv))) != cudaSuccess) return err;
      const size_t n = (size_t)B * H * d.NC * Dqk * Dv;
      XSEQ_LAUNCH(to_bf16_kernel, dim3(1024), dim3(kThreads), 0, stream)(a.Cin, static_cast<bf*>(a.CinB), n);
      XSEQ_LAUNCH(to_bf16_kernel, dim3(1024), dim3(kThreads), 0, stream)(a.dCs, static_cast<bf*>(a.dCsB), n);
      XSEQ_LAUNCH(k5, dim3(B * H, d.NC), dim3(kThreads), grad_tc_smem(Dqk, Dv), stream)(
          q, k, v, ig, fg, a.dh, a.ddot, a.mrow, a.den, static_cast<const bf*>(a.CinB), a.nin, a.min, a.m_last,
          static_cast<const bf*>(a.dCsB), a.dns, a.dq, a.dk, a.dv, d);
      return cudaGetLastError();
    }
  }
  XSEQ_LAUNCH(k4, dim3(B * H, d.NC), dim3(kThreads), grad_smem(Dqk), stream)(
      q, k, v, ig, fg, a.dh, a.ddot, a.mrow, a.den, a.Cin, a.nin, a.min, a.m_last, a.dCs, a.dns, a.dq, a.dk, a.dv, d);
  return cudaGetLastError();
}

}  // namespace

void mlstm_two_level_states(bool on) { g_two_level_states = on; }

cudaError_t mlstm_chunk_forward(MDType dt, const MLSTMChunkFwd& args, int B, int H, int T, int Dqk, int Dv,
                                cudaStream_t stream) {
  if (bad_dims(B, H, T, Dqk, Dv)) return cudaErrorInvalidValue;
  return dt == MDType::f32 ? forward_impl<float>(args, B, H, T, Dqk, Dv, stream)
                           : forward_impl<__nv_bfloat16>(args, B, H, T, Dqk, Dv, stream);
}

cudaError_t mlstm_chunk_states(MDType dt, const MLSTMChunkStates& args, int B, int H, int T, int Dqk, int Dv,
                               cudaStream_t stream) {
  if (bad_dims(B, H, T, Dqk, Dv)) return cudaErrorInvalidValue;
  return dt == MDType::f32 ? states_impl<float>(args, B, H, T, Dqk, Dv, stream)
                           : states_impl<__nv_bfloat16>(args, B, H, T, Dqk, Dv, stream);
}

cudaError_t mlstm_chunk_backward(MDType dt, const MLSTMChunkBwd& args, int B, int H, int T, int Dqk, int Dv,
                                 cudaStream_t stream) {
  if (bad_dims(B, H, T, Dqk, Dv)) return cudaErrorInvalidValue;
  return dt == MDType::f32 ? backward_impl<float>(args, B, H, T, Dqk, Dv, stream)
                           : backward_impl<__nv_bfloat16>(args, B, H, T, Dqk, Dv, stream);
}

}  // namespace xseq
