#pragma once
// Reading and writing the safetensors format (https://huggingface.co/docs/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}, "__metadata__": {string: string}}, then the raw little-endian data.
// Reading validates every field before touching the data; writing goes to a temporary
// file in the same directory, is flushed and synced, then renamed over the target.
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm {

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SafetensorsContents {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;

  const Tensor* find(const std::string& name) const;
};

// F32, F64 and I64 tensors (ddpm's dtypes). `source` names the bytes in error messages.
SafetensorsContents parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& source);
SafetensorsContents read_safetensors(const std::string& path);

// Tensors are written in the given order, contiguous, with offsets in that order.
std::vector<std::uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                                const std::map<std::string, std::string>& metadata = {});
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ddpm
