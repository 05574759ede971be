#pragma once
// The sizes of one convolution, resolved and validated once; shared by the fast kernels
// (convolution.cpp) and the references (convolution/reference.cpp). Internal.
#include "tensor/convolution.hpp"
#include "tensor/error.hpp"

namespace ddpm::convolution_detail {

// Sizes of one convolution, resolved and validated once.
struct Geometry {
  std::int64_t batch, in_channels, height, width;
  std::int64_t out_channels, kernel_height, kernel_width;
  std::int64_t out_height, out_width;
  std::int64_t stride, padding, dilation;
  std::int64_t kernel_area() const { return kernel_height * kernel_width; }
  std::int64_t in_area() const { return height * width; }
  std::int64_t out_area() const { return out_height * out_width; }
};

inline Geometry make_geometry(const Shape& input, const Shape& weight, const Convolution2dOptions& options, const char* op) {
  check(input.size() == 4, op, "input must be [N, C, H, W], got ", shape_string(input));
  check(weight.size() == 4, op, "weight must be [Co, Ci, KH, KW], got ", shape_string(weight));
  check(weight[1] == input[1], op, "weight ", shape_string(weight), " expects ", weight[1],
        " input channels, input ", shape_string(input), " has ", input[1]);
  check(options.stride >= 1 && options.dilation >= 1 && options.padding >= 0, op,
        "stride and dilation must be >= 1 and padding >= 0, got stride ", options.stride, ", padding ",
        options.padding, ", dilation ", options.dilation);
  Geometry g{input[0], input[1], input[2], input[3], weight[0], weight[2], weight[3], 0, 0,
             options.stride, options.padding, options.dilation};
  g.out_height = conv2d_output_size(g.height, g.kernel_height, options);
  g.out_width = conv2d_output_size(g.width, g.kernel_width, options);
  return g;
}

// A stride-1 convolution's input gradient is the forward correlation of dY with the kernel
// rotated by 180 degrees and transposed, dY padded by the kernel's extent less the forward
// padding: the geometry of that correlation, its padding that of the rows (the columns'
// may differ for a kernel that is not square: transposed_padding_width).
inline std::int64_t transposed_padding_height(const Geometry& g) { return g.dilation * (g.kernel_height - 1) - g.padding; }
inline std::int64_t transposed_padding_width(const Geometry& g) { return g.dilation * (g.kernel_width - 1) - g.padding; }
inline Geometry transposed_geometry(const Geometry& g) {
  return {g.batch, g.out_channels, g.out_height, g.out_width, g.in_channels, g.kernel_height, g.kernel_width,
          g.height, g.width, 1, transposed_padding_height(g), g.dilation};
}

// The kernels of the stride-1 input gradient's transposed correlation: tap (co, kh, kw)
// meets weight [co, ci, KH-1-kh, KW-1-kw]. weight: [Co, Ci, KH, KW]; result: [Ci, Co, KH, KW].
template <class T>
inline std::vector<T> rotated_transposed_weight(const T* weight, const Geometry& g) {
  const std::int64_t area = g.kernel_area(), taps = g.out_channels * area;
  std::vector<T> rotated(static_cast<std::size_t>(g.in_channels * taps));
  for (std::int64_t ci = 0; ci < g.in_channels; ++ci)
    for (std::int64_t co = 0; co < g.out_channels; ++co)
      for (std::int64_t k = 0; k < area; ++k)
        rotated[static_cast<std::size_t>(ci * taps + co * area + k)] = weight[(co * g.in_channels + ci) * area + area - 1 - k];
  return rotated;
}

}  // namespace ddpm::convolution_detail
