#include "tensor/random.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/parallel.hpp"

namespace ddpm {

std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> counter, std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = static_cast<std::uint64_t>(multiplier0) * counter[0];
    const std::uint64_t product1 = static_cast<std::uint64_t>(multiplier1) * counter[2];
    const auto high0 = static_cast<std::uint32_t>(product0 >> 32), low0 = static_cast<std::uint32_t>(product0);
    const auto high1 = static_cast<std::uint32_t>(product1 >> 32), low1 = static_cast<std::uint32_t>(product1);
    counter = {high1 ^ counter[1] ^ key[0], low1, high0 ^ counter[3] ^ key[1], low0};
    key[0] += weyl0;
    key[1] += weyl1;
  }
  return counter;
}

namespace {

std::array<std::uint32_t, 4> block_at(std::uint64_t seed, std::uint64_t position) {
  return philox4x32({static_cast<std::uint32_t>(position), static_cast<std::uint32_t>(position >> 32), 0u, 0u},
                    {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

// The blocks of `lanes` consecutive positions, the same values as block_at, computed lane by
// lane in plain arrays so that the compiler turns the 32x32 -> 64-bit products into vector
// multiplies (vpmuludq): about 8x the scalar rate.
constexpr int lanes = 8;
struct Blocks {
  std::uint32_t word[4][lanes];
};

// Ten Philox rounds on `lanes` counters at once. Separate, non-aliasing arrays and a round
// loop kept rolled (and out of line, where the restrict holds) are what lets GCC
// vectorise the lane loop.
[[gnu::noinline]] void philox_rounds(std::uint32_t* __restrict c0, std::uint32_t* __restrict c1, std::uint32_t* __restrict c2,
                   std::uint32_t* __restrict c3, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
#pragma GCC unroll 1
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < lanes; ++l) {
      const std::uint64_t product0 = static_cast<std::uint64_t>(multiplier0) * c0[l];
      const std::uint64_t product1 = static_cast<std::uint64_t>(multiplier1) * c2[l];
      const auto next0 = static_cast<std::uint32_t>(product1 >> 32) ^ c1[l] ^ key0;
      const auto next2 = static_cast<std::uint32_t>(product0 >> 32) ^ c3[l] ^ key1;
      c1[l] = static_cast<std::uint32_t>(product1), c3[l] = static_cast<std::uint32_t>(product0);
      c0[l] = next0, c2[l] = next2;
    }
    key0 += weyl0;
    key1 += weyl1;
  }
}

Blocks blocks_at(std::uint64_t seed, std::uint64_t first) {
  Blocks blocks;
  for (int l = 0; l < lanes; ++l) {
    const std::uint64_t position = first + static_cast<std::uint64_t>(l);
    blocks.word[0][l] = static_cast<std::uint32_t>(position), blocks.word[1][l] = static_cast<std::uint32_t>(position >> 32);
    blocks.word[2][l] = 0u, blocks.word[3][l] = 0u;
  }
  philox_rounds(blocks.word[0], blocks.word[1], blocks.word[2], blocks.word[3], static_cast<std::uint32_t>(seed),
                static_cast<std::uint32_t>(seed >> 32));
  return blocks;
}

// 53 random bits to a double in (0, 1): never 0, so log() is safe.
double open_unit(std::uint32_t high, std::uint32_t low) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(high) << 32) | low) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

// The value of one element from its block's words.
double uniform_from(const std::array<std::uint32_t, 4>& words) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(words[0]) << 32) | words[1]) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;  // [0, 1)
}

double normal_from(const std::array<std::uint32_t, 4>& words) {
  const double radius = std::sqrt(-2.0 * std::log(open_unit(words[0], words[1])));
  return radius * std::cos(2.0 * std::numbers::pi * open_unit(words[2], words[3]));
}

constexpr std::int64_t random_grain = 1 << 14;  // a multiple of a dropout group, 8 · `lanes`

// Element i of the tensor is sample(block of counter first + i).
template <class Sample>
Tensor draw(const Shape& shape, DType dtype, Generator& generator, Sample&& sample) {
  Tensor tensor = Tensor::empty(shape, dtype);
  const std::uint64_t first = generator.advance(static_cast<std::uint64_t>(tensor.numel()));
  const std::uint64_t seed = generator.seed();
  dispatch_all(dtype, [&]<class T>() {
    T* data = tensor.data<T>();
    parallel_for(tensor.numel(), random_grain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; i += lanes) {
        const Blocks blocks = blocks_at(seed, first + static_cast<std::uint64_t>(i));
        for (std::int64_t l = 0; l < std::min<std::int64_t>(lanes, end - i); ++l)
          data[i + l] = static_cast<T>(sample({blocks.word[0][l], blocks.word[1][l], blocks.word[2][l], blocks.word[3][l]}));
      }
    });
  });
  return tensor;
}

}  // namespace

double uniform_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
  return uniform_from(block_at(seed, offset + index));
}

double normal_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
  return normal_from(block_at(seed, offset + index));
}

Tensor rand(const Shape& shape, Generator& generator, DType dtype) {
  check(is_floating(dtype), "rand", "dtype must be floating, got ", dtype_name(dtype));
  return draw(shape, dtype, generator, [&](const std::array<std::uint32_t, 4>& words) {
    const double value = uniform_from(words);
    // Rounding to float32 could give exactly 1.0; keep the interval half-open.
    return dtype == DType::Float32 && static_cast<float>(value) >= 1.0f ? std::nextafter(1.0f, 0.0f) : value;
  });
}

Tensor randn(const Shape& shape, Generator& generator, DType dtype) {
  check(is_floating(dtype), "randn", "dtype must be floating, got ", dtype_name(dtype));
  return draw(shape, dtype, generator, [](const std::array<std::uint32_t, 4>& words) { return normal_from(words); });
}

void Generator::set_batch_window(std::int64_t first_image, std::int64_t batch_images) {
  check(batch_images >= 0 && first_image >= 0 && (batch_images == 0 ? first_image == 0 : first_image < batch_images),
        "Generator::set_batch_window", "image ", first_image, " is not in a batch of ", batch_images);
  window_first_ = first_image;
  window_batch_ = batch_images;
}

std::uint64_t Generator::advance_rows(std::int64_t rows, std::uint64_t counters_per_row) {
  if (window_batch_ == 0) return advance(static_cast<std::uint64_t>(rows) * counters_per_row);
  check(window_first_ + rows <= window_batch_, "Generator::advance_rows", "a draw of ", rows, " images from image ",
        window_first_, " runs past the batch window of ", window_batch_);
  const std::uint64_t first = offset_ + static_cast<std::uint64_t>(window_first_) * counters_per_row;
  offset_ += static_cast<std::uint64_t>(window_batch_) * counters_per_row;
  return first;
}

namespace {

// The drop threshold on 16-bit halves and the multiplier of a kept element: an element is
// dropped when its half is below round(p · 2^16), so the rate is that over 2^16 exactly, and
// a kept element is scaled by 2^16 / (2^16 − threshold), which keeps the expectation exact.
struct DropoutRate {
  std::uint32_t threshold;
  double keep_scale;
};
DropoutRate dropout_rate(double probability, const char* op) {
  check(probability >= 0.0 && probability < 1.0, op, "probability must be in [0, 1), got ", probability);
  const auto threshold = static_cast<std::uint32_t>(std::llround(std::ldexp(probability, 16)));
  check(threshold < (1u << 16), op, "probability ", probability, " rounds to 1 on the 2^-16 grid of the draws");
  return {threshold, 65536.0 / static_cast<double>(65536 - threshold)};
}

// The multipliers of one group of up to 64 elements drawn from `blocks` (1-8) blocks:
// element e of the group is the 16-bit half (e / blocks) % 2 of word e / blocks / 2 of block
// e % blocks. A whole group (eight blocks, computed `lanes` = 8 at a time) has element
// 8k + j from block j, so each run of eight is one vector compare and a contiguous store;
// a row's last, partial group of r elements takes only ceil(r / 8) blocks, and a group of
// one block (rows of at most eight elements) is drawn alone, not as one of eight.
constexpr std::int64_t dropout_group = 8 * lanes;
template <class T>
void dropout_multipliers(std::uint64_t seed, std::uint64_t first_block, std::int64_t blocks, std::uint32_t threshold,
                         T keep, T* multipliers) {
  auto multiplier = [&](std::uint32_t word, std::int64_t k) {
    return ((word >> (16 * (k % 2))) & 0xFFFFu) >= threshold ? keep : T(0);
  };
  if (blocks == 1) {
    const auto words = block_at(seed, first_block);
    for (std::int64_t k = 0; k < 8; ++k) multipliers[k] = multiplier(words[static_cast<std::size_t>(k / 2)], k);
    return;
  }
  const Blocks drawn = blocks_at(seed, first_block);
  if (blocks == lanes) {
    for (std::int64_t k = 0; k < 8; ++k)
      for (std::int64_t block = 0; block < lanes; ++block) multipliers[k * lanes + block] = multiplier(drawn.word[k / 2][block], k);
    return;
  }
  for (std::int64_t e = 0; e < 8 * blocks; ++e) multipliers[e] = multiplier(drawn.word[e / blocks / 2][e % blocks], e / blocks);
}

// Visits the inverted-dropout multipliers of a tensor of `shape` (random.hpp: dropout_mask
// for their layout) as body(first element, count, multipliers), a group at a time, in
// parallel: a pure function of (seed, counter, position). `first` and `blocks_per_row` as
// Generator::advance_rows returned them.
template <class T, class Body>
void for_each_dropout_group(const Shape& shape, std::int64_t count, std::uint32_t threshold, T keep, std::uint64_t seed,
                            std::uint64_t first, std::uint64_t blocks_per_row, Body&& body) {
  const std::int64_t rows = shape.empty() ? 1 : shape[0], per_row = rows > 0 ? count / rows : 0;
  constexpr auto blocks_per_group = static_cast<std::uint64_t>(lanes);
  if (per_row % dropout_group == 0) {  // rows of whole groups: group g of the tensor is at block first + 8g
    parallel_for(count, random_grain, [&](std::int64_t begin, std::int64_t end) {
      alignas(64) T multipliers[dropout_group];
      for (std::int64_t i = begin; i < end; i += dropout_group) {
        dropout_multipliers(seed, first + static_cast<std::uint64_t>(i / dropout_group) * blocks_per_group, lanes,
                            threshold, keep, multipliers);
        body(i, std::min(dropout_group, end - i), multipliers);
      }
    });
    return;
  }
  parallel_for(rows, std::max<std::int64_t>(1, random_grain / std::max<std::int64_t>(1, per_row)),
               [&](std::int64_t begin, std::int64_t end) {
    alignas(64) T multipliers[dropout_group];
    for (std::int64_t row = begin; row < end; ++row)
      for (std::int64_t e = 0; e < per_row; e += dropout_group) {
        const std::int64_t count = std::min(dropout_group, per_row - e), blocks = (count + 7) / 8;
        const std::uint64_t block = first + static_cast<std::uint64_t>(row) * blocks_per_row +
                                    static_cast<std::uint64_t>(e / dropout_group) * blocks_per_group;
        dropout_multipliers(seed, block, blocks, threshold, keep, multipliers);
        body(row * per_row + e, count, multipliers);
      }
  });
}

// Draws the multipliers of `shape` from the generator (advancing it) and hands each group to
// apply<T>(first element, count, multipliers).
template <class Apply>
void draw_dropout(const Shape& shape, std::int64_t count, double probability, Generator& generator, const char* op,
                  DType dtype, Apply&& apply) {
  const DropoutRate rate = dropout_rate(probability, op);
  const std::int64_t rows = shape.empty() ? 1 : shape[0], per_row = rows > 0 ? count / rows : 0;
  const auto blocks_per_row = static_cast<std::uint64_t>((per_row + 7) / 8);
  const std::uint64_t first = generator.advance_rows(rows, blocks_per_row);
  dispatch_floating(dtype, op, [&]<class T>() {
    for_each_dropout_group(shape, count, rate.threshold, static_cast<T>(rate.keep_scale), generator.seed(), first,
                           blocks_per_row, [&](std::int64_t at, std::int64_t n, const T* multipliers) {
                             apply.template operator()<T>(at, n, multipliers);
                           });
  });
}

}  // namespace

Tensor dropout_mask(const Shape& shape, double probability, Generator& generator, DType dtype) {
  check(is_floating(dtype), "dropout_mask", "dtype must be floating, got ", dtype_name(dtype));
  Tensor mask = Tensor::empty(shape, dtype);
  draw_dropout(shape, mask.numel(), probability, generator, "dropout_mask", dtype,
               [&]<class T>(std::int64_t at, std::int64_t n, const T* multipliers) {
                 std::copy(multipliers, multipliers + n, mask.data<T>() + at);
               });
  return mask;
}

namespace {
void check_droppable(const Tensor& x) {
  check(x.defined() && is_floating(x.dtype()), "apply_dropout_", "needs a floating tensor");
  check(x.is_contiguous(), "apply_dropout_", "tensor of shape ", shape_string(x.shape()), " is not contiguous");
}
}  // namespace

Tensor& apply_dropout_(Tensor& x, double probability, Generator& generator) {
  check_droppable(x);
  draw_dropout(x.shape(), x.numel(), probability, generator, "apply_dropout_", x.dtype(),
               [&]<class T>(std::int64_t at, std::int64_t n, const T* multipliers) {
                 T* data = x.data<T>() + at;
                 for (std::int64_t e = 0; e < n; ++e) data[e] *= multipliers[e];  // NaN stays NaN, as in mul
               });
  x.bump_version();
  return x;
}

void apply_dropout_(Tensor& x, Tensor& y, double probability, Generator& generator) {
  check_droppable(x);
  check_droppable(y);
  check(x.shape() == y.shape() && x.dtype() == y.dtype(), "apply_dropout_", "tensors of ", shape_string(x.shape()),
        " and ", shape_string(y.shape()), " (or of different dtypes) cannot share a mask");
  draw_dropout(x.shape(), x.numel(), probability, generator, "apply_dropout_", x.dtype(),
               [&]<class T>(std::int64_t at, std::int64_t n, const T* multipliers) {
                 T* first = x.data<T>() + at;
                 T* second = y.data<T>() + at;
                 for (std::int64_t e = 0; e < n; ++e) first[e] *= multipliers[e], second[e] *= multipliers[e];
               });
  x.bump_version();
  y.bump_version();
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator& generator) {
  check(high > low, "randint", "empty range [", low, ", ", high, ")");
  const auto span = static_cast<double>(high - low);
  return draw(shape, DType::Int64, generator, [&](const std::array<std::uint32_t, 4>& words) {
    const auto value = low + static_cast<std::int64_t>(uniform_from(words) * span);
    return std::min(value, high - 1);
  });
}

}  // namespace ddpm
