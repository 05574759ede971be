#include "tools/png_image.hpp"

#include <csetjmp>
#include <cstdio>
#include <stdexcept>

#include <png.h>

#include "nn/atomic_file.hpp"

namespace ddpm::tools {
namespace {

void append_bytes(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}
void flush_nothing(png_structp) {}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  if (image.channels != 1 && image.channels != 3) throw std::runtime_error(path + ": PNG needs 1 or 3 channels");
  if (static_cast<std::int64_t>(image.pixels.size()) != image.width * image.height * image.channels)
    throw std::runtime_error(path + ": pixel buffer does not match the image size");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) throw std::runtime_error(path + ": libpng could not start");
  std::vector<std::uint8_t> encoded;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error(path + ": libpng failed to encode the image");
  }
  png_set_write_fn(png, &encoded, append_bytes, flush_nothing);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (std::int64_t row = 0; row < image.height; ++row)
    png_write_row(png, const_cast<png_bytep>(image.pixels.data() + row * image.width * image.channels));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  write_file_atomically(path, encoded);
}

namespace {
// libpng reports through callbacks: keep its message for our exception instead of letting
// it print to stderr, and ignore warnings (a harmless sRGB profile note, say).
struct ReadError {
  char message[256] = "";
};
extern "C" void keep_png_error(png_structp png, png_const_charp message) {
  auto* error = static_cast<ReadError*>(png_get_error_ptr(png));
  std::snprintf(error->message, sizeof error->message, "%s", message);
  png_longjmp(png, 1);
}
extern "C" void ignore_png_warning(png_structp, png_const_charp) {}
}  // namespace

Image read_png(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error(path + ": cannot open");
  std::uint8_t signature[8];
  if (std::fread(signature, 1, 8, file) != 8 || png_sig_cmp(signature, 0, 8)) {
    std::fclose(file);
    throw std::runtime_error(path + ": not a PNG file");
  }
  ReadError error;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, keep_png_error, ignore_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    std::fclose(file);
    throw std::runtime_error(path + ": libpng could not start");
  }
  Image image;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(file);
    throw std::runtime_error(path + ": corrupt or truncated PNG" + (error.message[0] ? std::string(" (") + error.message + ")" : ""));
  }
  png_init_io(png, file);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  const png_byte color = png_get_color_type(png, info);
  if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_read_update_info(png, info);
  image.width = png_get_image_width(png, info);
  image.height = png_get_image_height(png, info);
  image.channels = png_get_channels(png, info);
  // A tiny file can claim a huge image: refuse more than 16M pixels before allocating.
  if (image.width > 16384 || image.height > 16384 || image.width * image.height > (std::int64_t{1} << 24))
    png_error(png, "larger than 16M pixels");
  image.pixels.resize(static_cast<std::size_t>(image.width * image.height * image.channels));
  for (std::int64_t row = 0; row < image.height; ++row) rows.push_back(image.pixels.data() + row * image.width * image.channels);
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(file);
  return image;
}

}  // namespace ddpm::tools
