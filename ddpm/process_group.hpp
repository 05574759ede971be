#pragma once
// The processes of a data-parallel job (MPI ranks, or one process), seen through two
// primitives, a blocking send and a blocking receive of bytes between two ranks. Every
// collective the trainer, the sampler and the evaluation need is built from them here, in a
// fixed order of messages and additions, so that its result does not depend on timing or on
// the transport: MPI's own reductions promise no order, and float addition is not
// associative. The MPI transport is ddpm/mpi_process_group.hpp (target ddpmcpp::mpi).
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace ddpm::diffusion {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void send(int destination, const void* data, std::size_t bytes) = 0;
  virtual void receive(int source, void* data, std::size_t bytes) = 0;
  // Ends every process of the job at once (after a rank's error, so that no other waits
  // for it forever). One process: std::exit.
  [[noreturn]] virtual void abort(int exit_code) = 0;
  // The transport, for `ddpm --version` and logs ("one process", "MPI (Open MPI 4.1.4)").
  virtual const char* transport() const = 0;
};

class SingleProcess final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void send(int, const void*, std::size_t) override;
  void receive(int, void*, std::size_t) override;
  [[noreturn]] void abort(int exit_code) override;
  const char* transport() const override { return "one process"; }
};

// Rank `root`'s bytes, copied to every rank.
void broadcast(ProcessGroup& group, void* data, std::size_t bytes, int root = 0);
// True on every rank when `value` is true on any (e.g. a stop request one rank received).
bool any_rank(ProcessGroup& group, bool value);
// Every rank's `local` values (any count per rank), concatenated in rank order, on every
// rank. T is a plain value type (float, double, integers).
template <class T>
std::vector<T> all_gather(ProcessGroup& group, std::span<const T> local);
// Sums `values` over the ranks by recursive doubling, a binary tree with a fixed pairing:
// at level l, rank r with bit l set hands its sum to rank r - 2^l, which adds it on the
// right. For a power-of-two count of ranks this is the perfect binary tree over ranks;
// rank 0's result is then broadcast, so every rank holds the same bits.
void sum_over_ranks(ProcessGroup& group, std::span<float> values);

template <class T>
std::vector<T> all_gather(ProcessGroup& group, std::span<const T> local) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::vector<T> all(local.begin(), local.end());
  if (group.size() == 1) return all;
  std::uint64_t count = local.size();
  if (group.rank() == 0) {
    for (int rank = 1; rank < group.size(); ++rank) {
      group.receive(rank, &count, sizeof count);
      const std::size_t at = all.size();
      all.resize(at + count);
      group.receive(rank, all.data() + at, count * sizeof(T));
    }
  } else {
    group.send(0, &count, sizeof count);
    group.send(0, local.data(), local.size_bytes());
  }
  count = all.size();
  broadcast(group, &count, sizeof count);
  all.resize(count);
  broadcast(group, all.data(), count * sizeof(T));
  return all;
}

}  // namespace ddpm::diffusion
