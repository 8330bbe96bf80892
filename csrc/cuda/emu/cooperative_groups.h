// Stand-in for the CUDA toolkit's cooperative_groups.h under the CPU emulator: the thread-block cluster
// (this_cluster: block_rank, num_blocks, sync, map_shared_rank), as csrc/cuda's kernels use it.
#pragma once
#include "xseq_emu.h"

namespace cooperative_groups {

struct cluster_group {
  unsigned block_rank() const { return (unsigned)xseq_emu::emu().cur->slot; }
  unsigned num_blocks() const { return xseq_emu::emu().cluster; }
  void sync() const { xseq_emu::yield(xseq_emu::Wait::cluster); }
  template <class T>
  T* map_shared_rank(T* addr, unsigned rank) const {
    return xseq_emu::map_shared_rank(addr, rank);
  }
};

inline cluster_group this_cluster() { return {}; }

}  // namespace cooperative_groups
