#include "tensor/convolution/padding.hpp"

#include <algorithm>

#include "tensor/parallel.hpp"

namespace ddpm::convolution_detail {

template <class T>
void copy_padded(const T* in, std::int64_t planes, std::int64_t height, std::int64_t width, std::int64_t pad_height,
                 std::int64_t pad_width, T* out) {
  const std::int64_t padded_height = height + 2 * pad_height, padded_width = width + 2 * pad_width;
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    T* destination = out + plane * padded_height * padded_width;
    std::fill(destination, destination + pad_height * padded_width, T(0));
    for (std::int64_t y = 0; y < height; ++y) {
      T* row = destination + (pad_height + y) * padded_width;
      std::fill(row, row + pad_width, T(0));
      std::copy(in + (plane * height + y) * width, in + (plane * height + y + 1) * width, row + pad_width);
      std::fill(row + pad_width + width, row + padded_width, T(0));
    }
    std::fill(destination + (pad_height + height) * padded_width, destination + padded_height * padded_width, T(0));
  }
}

PaddedInput padded_planes(const Tensor& input, std::int64_t pad_height, std::int64_t pad_width) {
  const Tensor x = input.contiguous();
  if (pad_height == 0 && pad_width == 0) return {x, x.size(2), x.size(3)};  // no copy (1x1 kernels)
  const std::int64_t planes = x.size(0) * x.size(1), height = x.size(2), width = x.size(3);
  const std::int64_t padded_height = height + 2 * pad_height, padded_width = width + 2 * pad_width;
  PaddedInput padded{Tensor::empty({x.size(0), x.size(1), padded_height, padded_width}, x.dtype()), padded_height,
                     padded_width};
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    const T* in = x.data<T>();
    T* out = padded.buffer.data<T>();
    parallel_for(planes, 8, [&](std::int64_t begin, std::int64_t end) {
      copy_padded(in + begin * height * width, end - begin, height, width, pad_height, pad_width,
                  out + begin * padded_height * padded_width);
    });
  });
  return padded;
}

template void copy_padded<float>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*);
template void copy_padded<double>(const double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                  double*);

}  // namespace ddpm::convolution_detail
