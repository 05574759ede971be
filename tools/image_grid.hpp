#pragma once
#include "tensor/tensor.hpp"
#include "tools/png_image.hpp"

namespace ddpm::tools {

// Images [N, C, H, W] with values in [-1, 1] laid out in rows of `columns` (0: a square-ish
// grid), 2 pixels of black between them, as 8-bit gray (C = 1) or RGB (C = 3).
Image image_grid(const Tensor& images, std::int64_t columns = 0);

}  // namespace ddpm::tools
