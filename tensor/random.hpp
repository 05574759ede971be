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

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

// Uniform in [0, 1) and standard normal (Box-Muller on the element's own block).
Tensor rand(const Shape& shape, Generator& generator, DType dtype = DType::Float32);
Tensor randn(const Shape& shape, Generator& generator, DType dtype = DType::Float32);
// Integers uniform in [low, high), int64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator& generator);

// Inverted-dropout multipliers: each element is 0 with probability p, else 1/(1 - p).
// Four elements share one Philox block (element i: word i % 4 of the block at counter
// offset + i / 4, dropped when below p·2^32), so a mask costs a quarter of a rand() of the
// same size and advances the generator by ceil(n / 4).
Tensor dropout_mask(const Shape& shape, double probability, Generator& generator, DType dtype = DType::Float32);

// The value of element `index` of a draw that started at counter `offset`, for callers that
// need single values (e.g. a data-order shuffle) from the same stream.
double uniform_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index);
double normal_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index);

}  // namespace ddpm
