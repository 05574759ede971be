#include "ddpm/gradient_sum.hpp"

#include <algorithm>

#include "tensor/elementwise.hpp"
#include "tensor/error.hpp"

namespace ddpm::diffusion {
namespace {
// left + right, elementwise; undefined is zero.
Gradients add_gradients(Gradients left, const Gradients& right) {
  for (std::size_t i = 0; i < left.size(); ++i) {
    if (!right[i].defined()) continue;
    left[i] = left[i].defined() ? add(left[i], right[i]) : right[i];
  }
  return left;
}
}  // namespace

std::int64_t odd_part(std::int64_t micro_batches) {
  check(micro_batches >= 1, "odd_part", "micro-batches must be >= 1, got ", micro_batches);
  while (micro_batches % 2 == 0) micro_batches /= 2;
  return micro_batches;
}

std::int64_t first_micro_batch(std::int64_t micro_batches, int processes, int rank) {
  const std::int64_t power_of_two = micro_batches / odd_part(micro_batches);
  check(processes >= 1 && (processes & (processes - 1)) == 0 && power_of_two % processes == 0, "micro-batches",
        processes, " processes cannot share ", micro_batches, " micro-batches: the process count must be a power of two "
        "dividing the micro-batch count (so that each process sums whole subtrees of the fixed reduction tree); "
        "use --micro-batches ", std::max<std::int64_t>(processes, 1) * odd_part(micro_batches), " or another -np");
  return micro_batches / processes * rank;
}

MicroBatchSum::MicroBatchSum(std::int64_t micro_batches, std::int64_t group_size)
    : micro_batches_(micro_batches), group_size_(group_size) {
  check(micro_batches >= 1 && group_size >= 1 && micro_batches % group_size == 0, "MicroBatchSum", micro_batches,
        " micro-batches are not whole groups of ", group_size);
}

void MicroBatchSum::add(Gradients gradients) {
  check(added_ < micro_batches_, "MicroBatchSum", "more than the ", micro_batches_, " micro-batches announced");
  group_ = group_.empty() ? std::move(gradients) : add_gradients(std::move(group_), gradients);
  if (++added_ % group_size_ != 0) return;
  Subtree subtree{1, std::move(group_)};
  group_.clear();
  while (!stack_.empty() && stack_.back().groups == subtree.groups) {
    subtree.sum = add_gradients(std::move(stack_.back().sum), subtree.sum);
    subtree.groups *= 2;
    stack_.pop_back();
  }
  stack_.push_back(std::move(subtree));
}

Gradients MicroBatchSum::total() {
  check(added_ == micro_batches_ && stack_.size() == 1, "MicroBatchSum", added_, " of ", micro_batches_,
        " micro-batches added; a process's share must be a power-of-two count of groups");
  return std::move(stack_.back().sum);
}

Gradients sum_over_processes(ProcessGroup& group, Gradients local) {
  if (group.size() == 1) return local;
  std::vector<std::uint64_t> present(local.size());
  std::int64_t count = 0;
  for (std::size_t i = 0; i < local.size(); ++i) {
    present[i] = local[i].defined() ? 1 : 0;
    if (present[i]) count += local[i].numel();
  }
  const std::vector<std::uint64_t> everyone = all_gather<std::uint64_t>(group, present);
  for (int rank = 1; rank < group.size(); ++rank)
    check(std::equal(present.begin(), present.end(), everyone.begin() + static_cast<std::ptrdiff_t>(rank * present.size())),
          "sum_over_processes", "rank ", rank, "'s step reached other parameters than rank 0's");
  std::vector<float> flat(static_cast<std::size_t>(count));
  std::size_t at = 0;
  for (const Tensor& gradient : local) {
    if (!gradient.defined()) continue;
    const Tensor values = gradient.contiguous();
    check(values.dtype() == DType::Float32, "sum_over_processes", "gradients must be float32, got ", dtype_name(values.dtype()));
    std::copy_n(values.data<float>(), values.numel(), flat.begin() + static_cast<std::ptrdiff_t>(at));
    at += static_cast<std::size_t>(values.numel());
  }
  sum_over_ranks(group, flat);
  at = 0;
  for (Tensor& gradient : local) {
    if (!gradient.defined()) continue;
    Tensor summed = Tensor::empty(gradient.shape(), DType::Float32);
    std::copy_n(flat.begin() + static_cast<std::ptrdiff_t>(at), summed.numel(), summed.data<float>());
    at += static_cast<std::size_t>(summed.numel());
    gradient = summed;
  }
  return local;
}

}  // namespace ddpm::diffusion
