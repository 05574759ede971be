#pragma once
// The IDX format of MNIST and Fashion-MNIST (big-endian header: two zero bytes, a type
// byte, a rank byte, then one u32 per dimension; then the data), read through zlib so
// .gz and plain files both work. Every header field is validated.
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::tools {

struct IdxArray {
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> data;  // unsigned bytes (type 0x08), row-major
};

// Throws std::runtime_error naming the file and the problem (missing, bad magic,
// unsupported type, truncated, trailing data, ...).
IdxArray read_idx(const std::string& path);

// Writes an unsigned-byte IDX file (uncompressed), atomically.
void write_idx(const std::string& path, const std::vector<std::int64_t>& shape, const std::vector<std::uint8_t>& data);

}  // namespace ddpm::tools
