// Stand-in for the CUDA toolkit's cooperative_groups.h under the CPU emulator: the thread-block cluster
// (this_cluster: block_rank, num_blocks, sync, barrier_arrive / barrier_wait, map_shared_rank), as csrc/cuda's kernels use it.
#pragma once
#include "xseq_emu.h"

namespace cooperative_groups {

struct cluster_group {
  unsigned block_rank() const { return (unsigned)xseq_emu::emu().cur->slot; }
  unsigned num_blocks() const { return xseq_emu::emu().cluster; }
  void sync() const { xseq_emu::yield(xseq_emu::Wait::cluster); }
  // The split barrier. The emulator places the barrier at the arrive or at the wait, chosen per launch (the
  // wait in forward order, the arrive in reverse, either when shuffled): a block that writes another's shared
  // memory after arriving, or reads what others wrote before it has waited, gives order-dependent results.
  struct arrival_token {};
  arrival_token barrier_arrive() const {
    if (xseq_emu::emu().split_at_arrive) xseq_emu::yield(xseq_emu::Wait::cluster);
    return {};
  }
  void barrier_wait(arrival_token&&) const {
    if (!xseq_emu::emu().split_at_arrive) xseq_emu::yield(xseq_emu::Wait::cluster);
  }
  template <class T>
  T* map_shared_rank(T* addr, unsigned rank) const {
    return xseq_emu::map_shared_rank(addr, rank);
  }
};

inline cluster_group this_cluster() { return {}; }

}  // namespace cooperative_groups
