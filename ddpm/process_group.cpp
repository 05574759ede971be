#include "ddpm/process_group.hpp"

#include <cstdlib>
#include <stdexcept>

#include "tensor/error.hpp"

namespace ddpm::diffusion {

void SingleProcess::send(int destination, const void*, std::size_t) {
  fail("ProcessGroup", "one process has no rank ", destination, " to send to");
}

void SingleProcess::receive(int source, void*, std::size_t) {
  fail("ProcessGroup", "one process has no rank ", source, " to receive from");
}

void SingleProcess::abort(int exit_code) { std::exit(exit_code); }

void broadcast(ProcessGroup& group, void* data, std::size_t bytes, int root) {
  if (group.rank() == root) {
    for (int rank = 0; rank < group.size(); ++rank)
      if (rank != root) group.send(rank, data, bytes);
  } else {
    group.receive(root, data, bytes);
  }
}

bool any_rank(ProcessGroup& group, bool value) {
  if (group.size() == 1) return value;
  const std::uint64_t mine = value ? 1 : 0;
  for (std::uint64_t flag : all_gather<std::uint64_t>(group, std::span<const std::uint64_t>(&mine, 1)))
    if (flag) return true;
  return false;
}

void sum_over_ranks(ProcessGroup& group, std::span<float> values) {
  const int rank = group.rank(), size = group.size();
  if (size == 1) return;
  std::vector<float> received(values.size());
  for (int distance = 1; distance < size; distance *= 2) {
    if (rank % (2 * distance) == distance) {
      group.send(rank - distance, values.data(), values.size_bytes());
      break;
    }
    if (rank % (2 * distance) == 0 && rank + distance < size) {
      group.receive(rank + distance, received.data(), values.size_bytes());
      for (std::size_t i = 0; i < values.size(); ++i) values[i] += received[i];
    }
  }
  broadcast(group, values.data(), values.size_bytes());
}

}  // namespace ddpm::diffusion
