// Fused sLSTM forward and backward over a whole sequence (kernel-only translation unit; see slstm_kernels.h).
//
// Heads never mix (R is block-diagonal), so one thread block owns one head and a tile of up to kTile batch
// rows for all T steps: thread j of the 4 * Dh threads computes gate row j (gate g = j / Dh, unit e = j % Dh)
// of pre = gx + R h_{t-1} (eqs 31-34) for every row of the tile; then the block applies the stabilised cell
// (eqs 46-50) unit by unit, keeping c, n, m in registers between steps. R is read from shared memory when
// this head's block of it fits there, else through the read-only cache.
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
        if (keep) {
          const size_t BHD = (size_t)B * HD;
          hprev[t * BHD + s] = hs[u];
          cs[t * BHD + s] = rc[k];
          ns[t * BHD + s] = rn[k];
          float* gt = gates + (size_t)t * 5 * BHD + s;
          gt[0] = r.i;
          gt[BHD] = r.f;
          gt[2 * BHD] = r.z;
          gt[3 * BHD] = r.o;
          gt[4 * BHD] = r.fac;
          if (t == T_ - 1) {
            cs[(size_t)T_ * BHD + s] = r.c;
            ns[(size_t)T_ * BHD + s] = r.n;
          }
        }
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

}  // namespace

cudaError_t slstm_forward(DType dt, const void* gx, const void* R, float* c, float* n, float* m, float* h,
                          void* hout, float* gates, float* cs, float* ns, float* hprev, int B, int T, int H,
                          int Dh, bool exp_forget, bool keep, cudaStream_t stream) {
  if (Dh < 1 || Dh > kSLSTMMaxHeadSize || B < 1 || T < 1 || H < 1) return cudaErrorInvalidValue;
  const dim3 grid(H, (B + kTile - 1) / kTile), block(4 * Dh);
  size_t bytes = 0;
  bool r_shared = false;
  cudaError_t err;
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

cudaError_t slstm_backward(const float* RT, const float* dh_out, float* dc, float* dn, float* dh,
                           const float* gates, const float* cs, const float* ns, float* dpre, float* dlogf0,
                           int B, int T, int H, int Dh, float clip, cudaStream_t stream) {
  if (Dh < 1 || Dh > kSLSTMMaxHeadSize || B < 1 || T < 1 || H < 1) return cudaErrorInvalidValue;
  const dim3 grid(H, (B + kTile - 1) / kTile), block(4 * Dh);
  size_t bytes = 0;
  bool r_shared = false;
  cudaError_t err = plan((const void*)slstm_backward_kernel, Dh, sizeof(float), &bytes, &r_shared);
  if (err != cudaSuccess) return err;
  XSEQ_LAUNCH(slstm_backward_kernel, grid, block, bytes, stream)(RT, dh_out, dc, dn, dh, gates, cs, ns, dpre, dlogf0,
                                                                 B, T, H, Dh, clip, r_shared);
  return cudaGetLastError();
}

}  // namespace xseq
