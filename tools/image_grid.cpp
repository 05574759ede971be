#include "tools/image_grid.hpp"

#include <cmath>
#include <stdexcept>

namespace ddpm::tools {

Image image_grid(const Tensor& images, std::int64_t columns) {
  if (images.rank() != 4 || (images.size(1) != 1 && images.size(1) != 3))
    throw std::runtime_error("image_grid: expected [N, 1 or 3, H, W], got " + shape_string(images.shape()));
  const std::int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (columns <= 0) columns = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const std::int64_t rows = (n + columns - 1) / columns, pad = 2;
  Image image{columns * (w + pad) + pad, rows * (h + pad) + pad, c, {}};
  image.pixels.assign(static_cast<std::size_t>(image.width * image.height * c), 0);
  const std::vector<float> values = images.to_vector<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t top = pad + i / columns * (h + pad), left = pad + i % columns * (w + pad);
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x) {
          const float v = values[((i * c + ch) * h + y) * w + x];
          const float scaled = std::round((std::min(std::max(v, -1.0f), 1.0f) + 1.0f) * 127.5f);
          image.pixels[((top + y) * image.width + left + x) * c + ch] = static_cast<std::uint8_t>(scaled);
        }
  }
  return image;
}

}  // namespace ddpm::tools
