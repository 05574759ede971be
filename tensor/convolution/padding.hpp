#pragma once
// The padding every convolution path shares: input planes copied once with their zero
// border in memory, so that every tap of every output pixel is a plain read (the implicit
// GEMM's packers copy without bounds checks, the direct and shifted paths read in place).
#include <cstdint>

#include "tensor/tensor.hpp"

namespace ddpm::convolution_detail {

// [batch, channels, height, width] planes with their zero padding in memory.
template <class T>
struct PaddedPlanes {
  const T* data;
  std::int64_t batch, channels, height, width;
};

// Copies `planes` planes of height x width into out, each surrounded by its zero padding:
// out is [planes, height + 2 pad_height, width + 2 pad_width].
template <class T>
void copy_padded(const T* in, std::int64_t planes, std::int64_t height, std::int64_t width, std::int64_t pad_height,
                 std::int64_t pad_width, T* out);

// An NCHW tensor with `pad_height` zero rows above and below every plane and `pad_width`
// zero columns left and right: buffer [N, C, H + 2 pad_height, W + 2 pad_width] (the
// input itself, made contiguous, when there is no padding).
struct PaddedInput {
  Tensor buffer;
  std::int64_t height, width;  // of the padded planes
  template <class T>
  PaddedPlanes<T> planes() const {
    return {buffer.data<T>(), buffer.size(0), buffer.size(1), height, width};
  }
};

PaddedInput padded_planes(const Tensor& input, std::int64_t pad_height, std::int64_t pad_width);

}  // namespace ddpm::convolution_detail
