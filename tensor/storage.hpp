#pragma once
// A reference-counted, 64-byte aligned buffer. Views of a tensor share one Storage, and
// so share its version counter: autograd compares versions to detect that a tensor it
// saved for backward was modified in place.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ddpm {

class Storage {
 public:
  static constexpr std::size_t alignment = 64;

  explicit Storage(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  std::uint64_t version_ = 0;
};

// Tensor memory of the process, for benchmarks and for users sizing a batch (the analogue
// of torch.cuda.memory_allocated / max_memory_allocated / memory_reserved).
struct MemoryStatistics {
  std::size_t live_bytes = 0;       // held by storages now
  std::size_t peak_live_bytes = 0;  // the most held at once since the last reset
  std::size_t cached_bytes = 0;     // released buffers kept for reuse
};
MemoryStatistics memory_statistics();
void reset_peak_memory();            // peak := live
void release_cached_memory();        // returns every cached buffer to the system; the cache learns its bound (the peak of live bytes) anew

}  // namespace ddpm
