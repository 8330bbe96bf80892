// Chunkwise mLSTM: the backward pass (kernel-only translation unit; interface in mlstm_kernels.h, helpers
// shared with the forward pass's unit mlstm_chunk_kernels.cu in mlstm_chunk_common.cuh). The states entering
// each chunk come from the forward pass's state kernels (mlstm_chunk_states, recomputed by the caller).
//
// Kernels, float32 SIMT unless named _tc:
//   ddot       (B*H, chunks):   dh_t . h_t with h_t recomputed in float32;
//   state_bwd  (B*H, Dv tiles): walks the chunks backwards with the gradient of the state after each chunk;
//   grad       (B*H, chunks):   dq, dk, dv of every chunk from the saved states and state gradients;
//   grad_tc    (B*H, chunks):   grad on tensor cores, for bfloat16 inputs with Dqk and Dv multiples of 16.
// The gate gradients follow from dq and dk in a few O(T) tensor ops (xseq/ops/mlstm/cuda.py).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

#include "mlstm_chunk_common.cuh"

namespace xseq {
namespace {

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

template <typename T>
cudaError_t backward_impl(const MLSTMChunkBackwardParams& a, cudaStream_t stream) {
  const Dims d = dims(a);
  const int B = a.B, H = a.H, Dqk = a.Dqk, Dv = a.Dv;
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

cudaError_t mlstm_chunk_backward(const MLSTMChunkBackwardParams& params, cudaStream_t stream) {
  if (bad_dims(params)) return cudaErrorInvalidValue;
  return params.dt == MDType::f32 ? backward_impl<float>(params, stream)
                                  : backward_impl<__nv_bfloat16>(params, stream);
}

}  // namespace xseq
