// A CPU emulator of the slice of CUDA that csrc/cuda's kernels use, so their logic runs and is tested on
// machines without a GPU (tests/ops/test_cuda_emulated.py). Not a simulator of timing or of the memory
// model: every CUDA thread of a block is a cooperative fiber (ucontext) in one OS thread, blocks run one
// after another (the blocks of one thread-block cluster together, each with its own shared memory, which
// the others reach through cooperative_groups' map_shared_rank), and a fiber runs until it reaches a barrier
// (__syncthreads, __syncwarp, a shuffle, a warp-wide matrix op, a cluster barrier) or exits. What it does
// catch:
//   - wrong indexing, wrong math, wrong reductions: the kernels' outputs are compared with the reference;
//   - missing barriers and races between blocks: the order in which fibers run between barriers, and the
//     order of the blocks, is selectable (forward, reverse, seeded shuffle); a race on shared memory, or a
//     block reading what another block of the same launch writes, shows up as results that depend on it;
//   - barriers not reached by every live thread (deadlock), warp ops mixed with block barriers in one warp,
//     a block of a cluster waiting at __syncthreads while the rest wait at the cluster barrier (deadlock),
//     another block's shared memory reached outside its bounds or from a kernel launched without a cluster,
//     shuffles that read an exited lane, launch configurations the hardware refuses (more than 1024
//     threads, dynamic shared memory over 48 KB without the opt-in attribute or over the opt-in limit);
//   - reads of shared memory never written: dynamic shared memory starts as NaN bytes (0xFF).
// Compiled with -DXSEQ_CUDA_EMU and -I csrc/cuda/emu, whose cuda_runtime.h, cuda_bf16.h and mma.h stand in
// for the CUDA toolkit's; the kernels then need no change beyond the XSEQ_LAUNCH / XSEQ_DYNAMIC_SMEM macros
// of common.cuh.
#pragma once
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

// ---- runtime types ---------------------------------------------------------------------------------------
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef struct CUstream_st* cudaStream_t;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorLaunchFailure = 4,
  cudaErrorInvalidConfiguration = 9,
};
enum cudaDeviceAttr {
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};

// ---- qualifiers --------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static  // one block at a time in one OS thread: a static is exactly per-block storage

namespace xseq_emu {

enum class Wait : int { none, block, warp, cluster, done };

struct Fiber {
  ucontext_t ctx;
  dim3 idx, bid;
  int linear = 0;  // thread index in its block
  int slot = 0;    // its block's rank in the running cluster (0 without clusters)
  Wait wait = Wait::none;
};

enum class Order : int { forward = 0, reverse = 1, shuffle = 2 };

struct Emu {
  dim3 grid, block;
  unsigned cluster = 1;  // blocks per cluster (along x); 1: a launch without clusters
  bool split_at_arrive = false;  // where a split cluster barrier (arrive / wait) synchronises in this launch
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;  // fiber stacks, left uninitialised (only what is used is touched)
  ucontext_t sched;
  Fiber* cur = nullptr;
  std::vector<std::vector<unsigned char>> smem;  // dynamic shared memory of each block of the running cluster
  std::vector<uint64_t> xchg;  // one slot per thread for shuffles
  const std::function<void()>* body = nullptr;
  cudaError_t last = cudaSuccess;
  std::string fault;
  std::map<const void*, int> dyn_smem_attr;
  int smem_optin = 232448;  // H100 / H200: 227 KB per block with the opt-in attribute
  int sm_count = 132;
  int cc_major = 9;  // compute capability: 9 (Hopper) runs the cluster kernels, below 9 their fallbacks
  Order order = Order::forward;
  unsigned seed = 0;
  size_t stack_bytes = 256 * 1024;
  long long launches = 0;
  long long cluster_launches = 0;  // launches through XSEQ_LAUNCH_CLUSTER
};

inline Emu& emu() {
  static Emu e;
  return e;
}

inline void fail(cudaError_t err, const std::string& why) {
  Emu& e = emu();
  if (e.last == cudaSuccess) {
    e.last = err;
    e.fault = why;
  }
}

inline void entry() {
  Emu& e = emu();
  (*e.body)();
  e.cur->wait = Wait::done;  // returning resumes the scheduler through uc_link
}

inline void yield(Wait w) {
  Emu& e = emu();
  Fiber* f = e.cur;
  f->wait = w;
  swapcontext(&f->ctx, &e.sched);
}

inline unsigned char* dynamic_smem() { return emu().smem[emu().cur->slot].data(); }

inline std::string block_name(const dim3& b) {
  return "block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ")";
}

// Runs one block, or the blocks of one cluster together, to completion; false after a fault (the fibers
// are abandoned).
inline bool run_blocks(Emu& e, std::mt19937& rng, const std::vector<dim3>& group) {
  const int per = (int)(e.block.x * e.block.y * e.block.z), nblk = (int)group.size(), n = per * nblk;
  e.fibers.assign(n, Fiber{});
  if ((int)e.stacks.size() < n) e.stacks.resize(n);
  e.xchg.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    Fiber& f = e.fibers[i];
    const int t = i % per;
    f.linear = t;
    f.slot = i / per;
    f.bid = group[f.slot];
    f.idx = dim3(t % e.block.x, (t / e.block.x) % e.block.y, t / (e.block.x * e.block.y));
    if (!e.stacks[i]) e.stacks[i].reset(new char[e.stack_bytes]);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = e.stacks[i].get();
    f.ctx.uc_stack.ss_size = e.stack_bytes;
    f.ctx.uc_link = &e.sched;
    makecontext(&f.ctx, entry, 0);
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (e.order == Order::reverse) std::reverse(order.begin(), order.end());
  const int warps = (per + 31) / 32;
  for (;;) {
    if (e.order == Order::shuffle) std::shuffle(order.begin(), order.end(), rng);
    for (int i : order) {
      Fiber& f = e.fibers[i];
      if (f.wait != Wait::none) continue;
      e.cur = &f;
      swapcontext(&e.sched, &f.ctx);
    }
    // every fiber now waits at a barrier or has exited
    bool released = false, any_live = false;
    for (int w = 0; w < warps * nblk; ++w) {
      const int blk = w / warps, lo = blk * per + 32 * (w % warps), hi = std::min(blk * per + per, lo + 32);
      int live = 0, at_warp = 0, done = 0;
      for (int i = lo; i < hi; ++i) {
        const Wait s = e.fibers[i].wait;
        done += s == Wait::done;
        live += s != Wait::done;
        at_warp += s == Wait::warp;
      }
      if (live) any_live = true;
      if (at_warp && at_warp != live) {
        fail(cudaErrorLaunchFailure, "warp " + std::to_string(w % warps) + " of " + block_name(group[blk]) +
                                         ": some lanes wait in a warp-wide op while others wait at a barrier");
        return false;
      }
      if (at_warp && done) {
        fail(cudaErrorLaunchFailure, "warp " + std::to_string(w) + ": a warp-wide op with lanes that have exited");
        return false;
      }
      if (at_warp) {
        for (int i = lo; i < hi; ++i) e.fibers[i].wait = Wait::none;
        released = true;
      }
    }
    if (released) continue;
    if (!any_live) return true;
    // __syncthreads: a block whose live fibers all wait there goes on. Of a cluster, one block at a time (the
    // first, the last or a random one, by the order): it runs ahead of the others until it waits again, so a
    // block that reads another's shared memory without a cluster barrier between sees it unwritten or stale.
    std::vector<int> ready;
    for (int blk = 0; blk < nblk; ++blk) {
      bool all_block = true, live = false;
      for (int i = blk * per; i < (blk + 1) * per; ++i) {
        const Wait s = e.fibers[i].wait;
        live = live || s != Wait::done;
        all_block = all_block && (s == Wait::block || s == Wait::done);
      }
      if (live && all_block) ready.push_back(blk);
    }
    if (!ready.empty()) {
      const int blk = e.order == Order::forward   ? ready.front()
                      : e.order == Order::reverse ? ready.back()
                                                  : ready[std::uniform_int_distribution<int>(0, (int)ready.size() - 1)(rng)];
      for (int i = blk * per; i < (blk + 1) * per; ++i)
        if (e.fibers[i].wait == Wait::block) e.fibers[i].wait = Wait::none;
      continue;
    }
    // the cluster barrier: every live fiber of every block of the cluster
    bool all_cluster = true;
    for (const Fiber& f : e.fibers) all_cluster = all_cluster && (f.wait == Wait::cluster || f.wait == Wait::done);
    if (all_cluster) {
      for (Fiber& f : e.fibers)
        if (f.wait == Wait::cluster) f.wait = Wait::none;
      continue;
    }
    fail(cudaErrorLaunchFailure,
         "deadlock in " + block_name(group[0]) + (nblk > 1 ? " and the rest of its cluster" : ""));
    return false;
  }
}

inline void launch(const void* kernel, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body,
                   unsigned cluster = 1) {
  Emu& e = emu();
  ++e.launches;
  if (cluster < 1 || cluster > 8 || grid.x % cluster) {
    fail(cudaErrorInvalidConfiguration, "cluster of " + std::to_string(cluster) + " blocks for a grid of " +
                                            std::to_string(grid.x) + " along x (1..8 dividing it)");
    return;
  }
  if (cluster > 1 && e.cc_major < 9) {
    fail(cudaErrorInvalidConfiguration, "thread-block clusters need compute capability 9.0");
    return;
  }
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (threads < 1 || threads > 1024 || block.z > 64) {
    fail(cudaErrorInvalidConfiguration, "launch with " + std::to_string(threads) + " threads per block (1..1024)");
    return;
  }
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration, "grid dimensions out of range");
    return;
  }
  const auto it = e.dyn_smem_attr.find(kernel);
  const size_t allowed = std::max<size_t>(48 * 1024, it == e.dyn_smem_attr.end() ? 0 : (size_t)it->second);
  if (smem > allowed) {
    fail(cudaErrorInvalidValue, std::to_string(smem) + " bytes of dynamic shared memory; the kernel allows " +
                                    std::to_string(allowed) + " (set cudaFuncAttributeMaxDynamicSharedMemorySize)");
    return;
  }
  std::mt19937 rng(e.seed);
  e.body = &body;
  e.grid = grid;
  e.block = block;
  e.cluster = cluster;
  e.split_at_arrive = e.order == Order::reverse || (e.order == Order::shuffle && (rng() & 1u));
  // blocks (clusters) run one at a time, in the same order as the fibers: a block that reads what another
  // block of the same launch (outside its cluster) writes gives results that depend on the order
  std::vector<std::vector<dim3>> groups;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; x += cluster) {
        groups.emplace_back();
        for (unsigned r = 0; r < cluster; ++r) groups.back().emplace_back(x + r, y, z);
      }
  if (e.order == Order::reverse) std::reverse(groups.begin(), groups.end());
  if (e.order == Order::shuffle) std::shuffle(groups.begin(), groups.end(), rng);
  for (const auto& g : groups) {
    // NaN bytes: reading shared memory nobody wrote shows up in the results
    e.smem.assign(g.size(), std::vector<unsigned char>(smem, 0xFF));
    if (!run_blocks(e, rng, g)) return;
  }
  e.cur = nullptr;
}

template <class... P>
struct Launcher {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t smem;
  unsigned cluster;
  bool as_cluster;
  template <class... A>
  cudaError_t operator()(A&&... a) const {
    const std::function<void()> body = [&]() { kernel(static_cast<P>(a)...); };
    emu().cluster_launches += as_cluster;
    launch(reinterpret_cast<const void*>(kernel), grid, block, smem, body, cluster);
    return emu().last;
  }
};

template <class... P>
Launcher<P...> launcher(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = nullptr) {
  return Launcher<P...>{kernel, grid, block, smem, 1, false};
}

template <class... P>
Launcher<P...> cluster_launcher(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t,
                                unsigned cluster) {
  return Launcher<P...>{kernel, grid, block, smem, cluster, true};
}

// another block's copy of a shared-memory address (cooperative_groups::cluster_group::map_shared_rank)
template <class T>
T* map_shared_rank(T* addr, unsigned rank) {
  Emu& e = emu();
  auto& mine = e.smem[e.cur->slot];
  const std::ptrdiff_t off = reinterpret_cast<unsigned char*>(addr) - mine.data();
  if (rank >= e.smem.size() || off < 0 || off + (std::ptrdiff_t)sizeof(T) > (std::ptrdiff_t)mine.size()) {
    fail(cudaErrorLaunchFailure, "map_shared_rank: rank " + std::to_string(rank) + " of a cluster of " +
                                     std::to_string(e.smem.size()) + ", or an address outside dynamic shared memory");
    static T sink[64];  // the launch has failed; keep the fiber's writes harmless until it reaches a barrier
    return sink;
  }
  return reinterpret_cast<T*>(e.smem[rank].data() + off);
}

// a thread's slot in the cluster's shuffle buffer
inline int xchg_slot(int linear) {
  return emu().cur->slot * (int)(emu().block.x * emu().block.y * emu().block.z) + linear;
}

// shuffles: write my value, wait for the warp, read the source lane's, wait again before the slots are reused
template <class T>
inline T exchange(T v, int src_lane) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 8 bytes");
  Emu& e = emu();
  const int me = e.cur->linear, base = me & ~31, per = (int)(e.block.x * e.block.y * e.block.z);
  std::memcpy(&e.xchg[xchg_slot(me)], &v, sizeof(T));
  yield(Wait::warp);
  const int from = base + src_lane;
  T r = v;
  if (from >= per) {
    fail(cudaErrorLaunchFailure, "shuffle from lane " + std::to_string(src_lane) + " past the block's last thread");
  } else {
    std::memcpy(&r, &e.xchg[xchg_slot(from)], sizeof(T));
  }
  yield(Wait::warp);
  return r;
}

inline int lane_id() { return emu().cur->linear & 31; }

}  // namespace xseq_emu

// ---- built-in variables ------------------------------------------------------------------------------------
#define threadIdx (::xseq_emu::emu().cur->idx)
#define blockIdx (::xseq_emu::emu().cur->bid)
#define blockDim (::xseq_emu::emu().block)
#define gridDim (::xseq_emu::emu().grid)

// ---- synchronisation and warp ops --------------------------------------------------------------------------
inline void __syncthreads() { xseq_emu::yield(xseq_emu::Wait::block); }
inline void __syncwarp(unsigned = 0xffffffffu) { xseq_emu::yield(xseq_emu::Wait::warp); }
template <class T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  const int l = xseq_emu::lane_id();
  return xseq_emu::exchange(v, l - l % width + src % width);
}
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  const int l = xseq_emu::lane_id(), s = l ^ mask;
  return xseq_emu::exchange(v, s / width == l / width ? s : l);
}
template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int l = xseq_emu::lane_id();
  return xseq_emu::exchange(v, l % width + (int)delta < width ? l + (int)delta : l);
}
template <class T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int l = xseq_emu::lane_id();
  return xseq_emu::exchange(v, l % width - (int)delta >= 0 ? l - (int)delta : l);
}

// cooperative fibers never interleave inside one call, so plain read-modify-writes are atomic here
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline int atomicAdd(int* p, int v) {
  const int old = *p;
  *p = old + v;
  return old;
}

// ---- device math -------------------------------------------------------------------------------------------
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- runtime API -------------------------------------------------------------------------------------------
inline cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  const xseq_emu::Emu& e = xseq_emu::emu();
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = e.sm_count; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = e.cc_major; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = e.smem_optin; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
inline cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  xseq_emu::Emu& e = xseq_emu::emu();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > e.smem_optin) {
    xseq_emu::fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                              " bytes of dynamic shared memory, over the opt-in limit of " +
                                              std::to_string(e.smem_optin));
    return cudaErrorInvalidValue;
  }
  e.dyn_smem_attr[kernel] = value;
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError() {
  xseq_emu::Emu& e = xseq_emu::emu();
  const cudaError_t err = e.last;
  e.last = cudaSuccess;
  return err;
}
inline cudaError_t cudaPeekAtLastError() { return xseq_emu::emu().last; }
inline const char* cudaGetErrorString(cudaError_t err) {
  static thread_local std::string msg;
  msg = err == cudaSuccess ? std::string("no error")
                           : "emulated CUDA error " + std::to_string((int)err) + ": " + xseq_emu::emu().fault;
  return msg.c_str();
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
