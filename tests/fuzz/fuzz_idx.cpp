// libFuzzer target: the IDX reader (plain and gzip) must reject malformed files with a
// std::runtime_error, never crash or allocate without bound.
#include <stdexcept>

#include "tests/fuzz/fuzz_file_reader.hpp"
#include "tools/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".idx");
  try {
    ddpm::tools::read_idx(path);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
