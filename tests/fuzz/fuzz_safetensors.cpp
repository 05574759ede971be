// libFuzzer target: the safetensors parser must reject any malformed input with a
// SafetensorsError, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "nn/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    ddpm::parse_safetensors(std::span<const std::uint8_t>(data, size), "fuzz");
  } catch (const ddpm::SafetensorsError&) {
  } catch (const ddpm::TensorError&) {
  }
  return 0;
}
