#pragma once
// How the GEMM cuts its work for this machine's caches, shared by every driver of the
// microkernel (the general GEMM and the convolutions that read their input in place).
#include <cstdint>
#include <cstdlib>

namespace ddpm::gemm_detail {

// Block sizes for 32 KiB L1d and 512 KiB L2 per core: a KC x NR panel of B (16 KiB for
// AVX2 floats) stays in L1 while the MC x KC block of A (144 KiB) streams from L2.
constexpr std::int64_t depth_block = 256;        // KC
constexpr std::int64_t row_block = 144;          // MC, a multiple of every MR
constexpr std::int64_t max_column_block = 4096;  // NC

constexpr std::int64_t round_up(std::int64_t value, std::int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// The depth is cut into near-equal blocks of at most KC (288 -> 144 + 144, not 256 + 32): a
// thin last block would spend more on loading and storing C tiles than on FMAs. The cut
// depends only on k, so it is part of the fixed summation order.
constexpr std::int64_t depth_step(std::int64_t k) {
  const std::int64_t blocks = (k + depth_block - 1) / depth_block;
  return (k + blocks - 1) / blocks;
}

// A per-thread, 64-byte aligned scratch buffer that only grows. Slots 0-1 belong to the
// GEMM driver, 2-5 to the convolution drivers; a caller never holds a slot across a call
// into another driver.
template <class T>
T* scratch(int slot, std::size_t count) {
  struct Buffer {
    void* data = nullptr;
    std::size_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[6];
  Buffer& buffer = buffers[slot];
  const std::size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
  if (bytes > buffer.capacity) {
    std::free(buffer.data);
    buffer.data = std::aligned_alloc(64, bytes);
    buffer.capacity = bytes;
  }
  return static_cast<T*>(buffer.data);
}

// A 64-byte aligned buffer (packed panels are read with aligned loads).
template <class T>
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t count)
      : data(static_cast<T*>(std::aligned_alloc(64, (count * sizeof(T) + 63) / 64 * 64))) {}
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* data;
};

}  // namespace ddpm::gemm_detail
