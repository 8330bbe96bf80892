// Chunkwise mLSTM: the chunk states and the forward pass (kernel-only translation unit; interface in
// mlstm_kernels.h, helpers shared with the backward pass's unit mlstm_chunk_bwd_kernels.cu in
// mlstm_chunk_common.cuh). Same math as xseq/ops/mlstm/chunkwise.py: the sequence is cut into chunks of kChunk
// steps; the state (C, n, m) is carried across chunks by the recurrence (eqs 9-10 and 46-48, one step per
// chunk), and each chunk's output is the stabilised parallel form (eqs 76-83) plus the contribution of the
// state it started from.
//
// Kernels, float32 SIMT unless named _tc:
//   state_fwd  (B*H, Dv tiles): walks the chunks in order, keeps a Dqk x kBV tile of C in registers, stores
//              the state entering every chunk;
//   state_local + state_scan (mlstm_two_level_states): the same states, every chunk's own contribution in
//              parallel, then the recurrence over chunks;
//   out_fwd    (B*H, chunks):   every chunk at once: the intra-chunk attention-like part and the incoming
//              state's part, and the row stabiliser and denominator the backward pass needs;
//   out_fwd_tc (B*H, chunks, 64 columns): out_fwd on tensor cores, for bfloat16 inputs.
// The backward kernels (state_bwd, ddot, grad, grad_tc) are in mlstm_chunk_bwd_kernels.cu.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

#include "mlstm_chunk_common.cuh"

namespace xseq {
namespace {

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

size_t out_tc_smem(int Dqk) {
  return ((size_t)2 * kChunk * Dqk + (size_t)Dqk * kBVT + kChunk * kBVT + kChunk * kChunk) * 2 +
         ((size_t)2 * kChunk * kChunk + 7 * kChunk) * sizeof(float);
}
size_t out_smem(int Dqk) { return ((size_t)2 * kChunk * Dqk + kChunk * kChunk + 7 * kChunk) * sizeof(float); }

bool g_two_level_states = false;

template <typename T>
cudaError_t states_impl(const MLSTMChunkStatesParams& a, cudaStream_t stream) {
  const Dims d = dims(a);
  const int B = a.B, H = a.H, Dqk = a.Dqk, Dv = a.Dv;
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
cudaError_t forward_impl(const MLSTMChunkForwardParams& a, cudaStream_t stream) {
  const Dims d = dims(a);
  const int B = a.B, H = a.H, Dqk = a.Dqk, Dv = a.Dv;
  const auto [q, k, v, ig, fg] = Seq<T>(a);
  auto k2 = out_fwd_kernel<T>;
  cudaError_t err;
  if ((err = states_impl<T>(a, stream)) != cudaSuccess) return err;  // the states part of a
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

}  // namespace

void mlstm_two_level_states(bool on) { g_two_level_states = on; }

cudaError_t mlstm_chunk_forward(const MLSTMChunkForwardParams& params, cudaStream_t stream) {
  if (bad_dims(params)) return cudaErrorInvalidValue;
  return params.dt == MDType::f32 ? forward_impl<float>(params, stream)
                                  : forward_impl<__nv_bfloat16>(params, stream);
}

cudaError_t mlstm_chunk_states(const MLSTMChunkStatesParams& params, cudaStream_t stream) {
  if (bad_dims(params)) return cudaErrorInvalidValue;
  return params.dt == MDType::f32 ? states_impl<float>(params, stream)
                                  : states_impl<__nv_bfloat16>(params, stream);
}

}  // namespace xseq
