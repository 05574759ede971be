#pragma once
// 8-bit gray or RGB PNG files through libpng. Writes are atomic (encoded in memory, then
// written through a temporary file and renamed).
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::tools {

struct Image {
  std::int64_t width = 0, height = 0, channels = 1;  // channels: 1 (gray) or 3 (RGB)
  std::vector<std::uint8_t> pixels;                  // row-major, interleaved
};

void write_png(const std::string& path, const Image& image);
// Reads gray, gray+alpha, RGB, RGBA or palette PNGs, 8 or 16 bit, into 8-bit gray or RGB.
Image read_png(const std::string& path);

}  // namespace ddpm::tools
