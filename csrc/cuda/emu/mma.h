// Stand-in for the CUDA toolkit's mma.h (nvcuda::wmma) under the CPU emulator. Every lane holds the whole
// tile in its fragment (the hardware spreads it over the warp in an unspecified layout, so kernels must only
// touch fragments through these calls). Each call is warp-collective: it waits for the whole warp first, so
// a call that not every lane makes is reported. A store writes only the elements one lane would own under an
// arbitrary mapping (element i by lane i % 32): reading another lane's part without a __syncwarp or
// __syncthreads in between then reads stale data in some fiber order.
#pragma once
#include <type_traits>

#include "cuda_bf16.h"
#include "xseq_emu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[rows * cols];  // held in float32 here; inputs are rounded to T as they are loaded
};

namespace detail {
inline void warp_op() { xseq_emu::yield(xseq_emu::Wait::warp); }
template <class T>
inline float load(const T& v) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    return __bfloat162float(v);
  } else {
    return (float)v;
  }
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class L, class P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load needs a layout_t");
  detail::warp_op();
  using F = fragment<Use, M, N, K, T, L>;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = detail::load(std::is_same<L, row_major>::value ? p[r * ldm + c] : p[c * ldm + r]);
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  detail::warp_op();
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  detail::warp_op();
  const int lane = xseq_emu::lane_id();
  for (int i = lane; i < M * N; i += 32) {
    const int r = i / N, c = i % N;
    (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[i];
  }
}

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  detail::warp_op();
  for (float& x : f.x) x = v;
}

template <int M, int N, int K, class TA, class LA, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TA, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  detail::warp_op();
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float acc = c.x[i * N + j];
      for (int k = 0; k < K; ++k) acc += a.x[i * K + k] * b.x[k * N + j];
      out[i * N + j] = acc;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
}

}  // namespace wmma
}  // namespace nvcuda
