#pragma once
// The sum of a batch's gradient over its micro-batches, in one fixed tree whatever the
// processes the micro-batches run on. With M = 2^k · q micro-batches (q odd), the tree is:
// q consecutive micro-batches make a group, summed left to right; the 2^k groups are summed
// by the perfect binary tree over them. When N processes (N a power of two dividing 2^k)
// each run M / N consecutive micro-batches, each process's groups form whole subtrees, and
// sum_over_ranks' recursive doubling finishes the same tree: the same bits for every N.
// A gradient is a list of tensors in parameter order; an undefined tensor (a parameter the
// step did not reach) adds as nothing.
#include <cstdint>
#include <vector>

#include "ddpm/process_group.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

using Gradients = std::vector<Tensor>;

// The micro-batches of one process, summed as their part of the tree. add() them in order.
class MicroBatchSum {
 public:
  // `micro_batches` of this process, `group_size` = q of the whole batch.
  MicroBatchSum(std::int64_t micro_batches, std::int64_t group_size);
  void add(Gradients gradients);
  Gradients total();  // after the last add()

 private:
  struct Subtree {
    std::int64_t groups;
    Gradients sum;
  };
  std::int64_t micro_batches_, group_size_, added_ = 0;
  Gradients group_;
  std::vector<Subtree> stack_;  // sizes strictly decreasing: a binary counter of groups
};

// q of M micro-batches: M divided by its largest power-of-two factor.
std::int64_t odd_part(std::int64_t micro_batches);
// Checks that N processes can share M micro-batches in the tree above (N a power of two
// dividing M) and returns the first micro-batch of `rank`; the error names both numbers.
std::int64_t first_micro_batch(std::int64_t micro_batches, int processes, int rank);

// `local` is this process's MicroBatchSum::total(); returns the whole batch's sum, the same
// on every rank. Which parameters have a gradient must agree across ranks (checked).
Gradients sum_over_processes(ProcessGroup& group, Gradients local);

}  // namespace ddpm::diffusion
