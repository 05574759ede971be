#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Element i of a draw
// is a pure function of (seed, offset + i): no hidden sequential state, so results do not
// depend on threads, chunking or batch splits. A Generator is just (seed, offset); each
// draw of n elements advances the offset by n, and saving those two numbers saves it.
#include <array>
#include <cstdint>

#include "tensor/tensor.hpp"

namespace ddpm {

// One Philox4x32-10 block: four 32-bit words from a 128-bit counter and a 64-bit key.
std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> counter, std::array<std::uint32_t, 2> key);

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  void set_state(std::uint64_t seed, std::uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves `count` counters and returns the first.
  std::uint64_t advance(std::uint64_t count) {
    const std::uint64_t first = offset_;
    offset_ += count;
    return first;
  }

  // Makes batched draws (advance_rows) take the rows of images first_image, first_image + 1,
  // ... of a batch of `batch_images`: a micro-batch or a rank's share draws what the same
  // images draw when the whole batch runs at once. batch_images 0 ends the window.
  void set_batch_window(std::int64_t first_image, std::int64_t batch_images);
  std::int64_t window_first() const { return window_first_; }
  std::int64_t window_batch() const { return window_batch_; }
  // Reserves `rows` rows of `counters_per_row` counters, one row per image, and returns the
  // first counter of this draw's first row. In a batch window the draw advances past the
  // whole batch's rows.
  std::uint64_t advance_rows(std::int64_t rows, std::uint64_t counters_per_row);

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
  std::int64_t window_first_ = 0, window_batch_ = 0;
};

// Uniform in [0, 1) and standard normal (Box-Muller on the element's own block).
Tensor rand(const Shape& shape, Generator& generator, DType dtype = DType::Float32);
Tensor randn(const Shape& shape, Generator& generator, DType dtype = DType::Float32);
// Integers uniform in [low, high), int64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator& generator);

// Inverted-dropout multipliers: each element is 0 with probability q = round(p · 2^16) / 2^16
// (p on the 2^-16 grid: 0.1 gives 6554 / 65536 = 0.1000061), else 1 / (1 − q), so the
// expectation is exactly 1. Dimension 0 is the image: image b's row of n = numel / shape[0]
// elements starts at block first + b · ceil(n / 8) (first from Generator::advance_rows, so a
// batch window gives each image its own draws). The row is cut into groups of 64 elements,
// group g drawing from the blocks from 8g: a whole group from eight, its element 8k + j
// from block j; the last, partial group of r elements from m = ceil(r / 8) blocks, its
// element e from block e % m. Element e of a group is dropped when the 16-bit half
// (e / m) % 2 (0: low) of word e / m / 2 of its block is below round(p · 2^16) (m = 8 for a
// whole group). Eight elements share a Philox block: a mask costs an eighth of a rand().
Tensor dropout_mask(const Shape& shape, double probability, Generator& generator, DType dtype = DType::Float32);
// x *= dropout_mask(x.shape(), probability, generator, x.dtype()), bit for bit, in place and
// without the mask tensor (x contiguous).
Tensor& apply_dropout_(Tensor& x, double probability, Generator& generator);
// Both x and y (one shape and dtype, contiguous) times the same draw's mask: what one
// apply_dropout_ would do to each from the same generator state, drawn once.
void apply_dropout_(Tensor& x, Tensor& y, double probability, Generator& generator);

// The value of element `index` of a draw that started at counter `offset`, for callers that
// need single values (e.g. a data-order shuffle) from the same stream.
double uniform_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index);
double normal_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index);

}  // namespace ddpm
