#pragma once
// How the GEMM cuts its work for this machine's caches, shared by every driver of the
// microkernel (the general GEMM and the convolutions that read their input in place).
#include <cstdint>
#include <cstdlib>

namespace ddpm::gemm_detail {

// Block sizes for 32 KiB L1d and 512 KiB L2 per core. The depth of a block (KC) belongs to
// the microkernel (Microkernel::kc, from depth_block_for): its KC x NR panel of B stays in
// L1 while the MC x KC block of A streams from L2.
constexpr std::int64_t row_block = 144;          // MC, a multiple of every MR
constexpr std::int64_t max_column_block = 4096;  // NC

// KC for a B panel row of `panel_row_bytes` (NR values): as deep as `panel_bytes` holds,
// at least 128 and at most `most`.
constexpr std::int64_t depth_block_for(std::int64_t panel_row_bytes, std::int64_t panel_bytes, std::int64_t most) {
  const std::int64_t fits = panel_bytes / panel_row_bytes;
  return fits < 128 ? 128 : fits > most ? most : fits;
}

// Microkernel::kc: the panel takes at most 24 KiB of L1, and KC is at most 384 (OpenBLAS's
// and BLIS's depth for these kernels). AVX2 floats (NR = 16): 384, a 24 KiB panel; AVX-512
// (NR = 32): 192. At 384 rather than 256 the fixed cost of each microkernel call (zeroing,
// the C update) is spread over 1.5x the FMAs.
constexpr std::int64_t l1_panel_bytes = 24 * 1024, l1_panel_most_depth = 384;

// Microkernel::deep_kc, for large products (see gemm.cpp's gemm_run): the panel may take
// 64 KiB, an eighth of L2, and KC is at most 1024 (AVX2 floats: 1024; AVX-512: 512). A
// panel is read front to back once per row tile, a stream the hardware prefetcher keeps
// ahead of from L2 as well as from L1: in the loop nest of a 2048 product a 1024-deep panel
// in L2 ran as fast as a 342-deep one in L1, and the fixed cost of each microkernel call
// (zeroing, the loop exit, the C update) is spread over three times the FMAs, with C read
// and written a third as often. Only for wide products (16 B panels or more): with KC =
// 1024 for every product, the U-Net's convolutions (64 columns wide) ran 2-5% slower,
// attention 4-8%.
constexpr std::int64_t l2_panel_bytes = 64 * 1024, l2_panel_most_depth = 1024;

constexpr std::int64_t round_up(std::int64_t value, std::int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// The depth is cut into near-equal blocks of at most `depth_block` (KC = 384: 400 -> 200 +
// 200, not 384 + 16): a thin last block would spend more on loading and storing C tiles
// than on FMAs. The cut depends only on k and the kernel, so it is part of the fixed
// summation order.
constexpr std::int64_t depth_step(std::int64_t k, std::int64_t depth_block) {
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
  AlignedBuffer(AlignedBuffer&& other) noexcept : data(other.data) { other.data = nullptr; }
  AlignedBuffer& operator=(AlignedBuffer&&) = delete;
  T* data;
};

}  // namespace ddpm::gemm_detail
