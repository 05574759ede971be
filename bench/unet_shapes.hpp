#pragma once
// The distinct convolutions of the default flagship U-Net (ch 32, ch_mult 1,2,2, 28x28,
// attention at 7x7), as bench/pytorch/bench_unet_kernels.py lists them too.
#include <cstdint>
#include <vector>

namespace ddpm::bench {

struct ConvolutionShape {
  const char* name;
  std::int64_t in_channels, out_channels, size, kernel, stride;
};

inline const std::vector<ConvolutionShape>& unet_convolutions() {
  static const std::vector<ConvolutionShape> shapes = {
      {"conv_in 1->32 @28", 1, 32, 28, 3, 1},
      {"res 32->32 @28", 32, 32, 28, 3, 1},
      {"down 32->32 @28 s2", 32, 32, 28, 3, 2},
      {"res 32->64 @14", 32, 64, 14, 3, 1},
      {"skip 32->64 @14 1x1", 32, 64, 14, 1, 1},
      {"res 64->64 @14", 64, 64, 14, 3, 1},
      {"down 64->64 @14 s2", 64, 64, 14, 3, 2},
      {"res 64->64 @7", 64, 64, 7, 3, 1},
      {"res 128->64 @7", 128, 64, 7, 3, 1},
      {"skip 128->64 @7 1x1", 128, 64, 7, 1, 1},
      {"res 128->64 @14", 128, 64, 14, 3, 1},
      {"res 96->64 @14", 96, 64, 14, 3, 1},
      {"up 64->64 @28", 64, 64, 28, 3, 1},
      {"res 96->32 @28", 96, 32, 28, 3, 1},
      {"res 64->32 @28", 64, 32, 28, 3, 1},
      {"skip 96->32 @28 1x1", 96, 32, 28, 1, 1},
      {"conv_out 32->1 @28", 32, 1, 28, 3, 1},
  };
  return shapes;
}

}  // namespace ddpm::bench
