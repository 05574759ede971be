// libFuzzer target: the PNG reader must reject malformed files with a std::runtime_error.
#include <stdexcept>

#include "tests/fuzz/fuzz_file_reader.hpp"
#include "tools/png_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".png");
  try {
    ddpm::tools::read_png(path);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
