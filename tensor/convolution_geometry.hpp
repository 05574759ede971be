#pragma once
// The sizes of one convolution, resolved and validated once; shared by the fast kernels
// (convolution.cpp) and the references (convolution_reference.cpp). Internal.
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

}  // namespace ddpm::convolution_detail
