#include "tools/idx.hpp"

#include <stdexcept>

#include <zlib.h>

#include "nn/atomic_file.hpp"

namespace ddpm::tools {
namespace {

[[noreturn]] void fail_idx(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

// Reads exactly `count` bytes or reports how many were there.
void read_exactly(gzFile file, const std::string& path, std::uint8_t* out, std::size_t count, const char* what) {
  std::size_t done = 0;
  while (done < count) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(count - done, 1u << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      fail_idx(path, std::string("read error in ") + what + ": " + gzerror(file, &code));
    }
    if (got == 0) fail_idx(path, std::string("truncated: ") + what + " needs " + std::to_string(count) + " bytes, file has " + std::to_string(done));
    done += static_cast<std::size_t>(got);
  }
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) fail_idx(path, "cannot open (missing file? for Fashion-MNIST install Debian's dataset-fashion-mnist)");
  struct Closer {
    gzFile file;
    ~Closer() { gzclose(file); }
  } closer{file};
  std::uint8_t magic[4];
  read_exactly(file, path, magic, 4, "the header");
  if (magic[0] != 0 || magic[1] != 0) fail_idx(path, "not an IDX file (the magic number must start with two zero bytes)");
  if (magic[2] != 0x08) fail_idx(path, "IDX element type 0x" + std::to_string(magic[2]) + " is not supported (only unsigned bytes, 0x08)");
  const int rank = magic[3];
  if (rank < 1 || rank > 4) fail_idx(path, "IDX rank " + std::to_string(rank) + " is not between 1 and 4");
  IdxArray array;
  std::uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    std::uint8_t bytes[4];
    read_exactly(file, path, bytes, 4, "the dimensions");
    const std::uint64_t size = (std::uint64_t{bytes[0]} << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3];
    if (size == 0) fail_idx(path, "dimension " + std::to_string(d) + " is zero");
    count *= size;
    if (count > (std::uint64_t{1} << 34)) fail_idx(path, "IDX dimensions are implausibly large");
    array.shape.push_back(static_cast<std::int64_t>(size));
  }
  // The header's size is not trusted with memory: the buffer grows only as data arrives,
  // so a lying header in a short (or small gzip) file cannot demand gigabytes.
  constexpr std::uint64_t chunk = 1 << 20;
  while (array.data.size() < count) {
    const std::uint64_t done = array.data.size();
    const std::uint64_t next = std::min(count - done, chunk);
    array.data.resize(done + next);
    const int got = gzread(file, array.data.data() + done, static_cast<unsigned>(next));
    if (got < 0) {
      int code = 0;
      fail_idx(path, std::string("read error in the data: ") + gzerror(file, &code));
    }
    if (static_cast<std::uint64_t>(got) < next)
      fail_idx(path, "truncated: the data needs " + std::to_string(count) + " bytes, file has " + std::to_string(done + got));
  }
  std::uint8_t extra;
  if (gzread(file, &extra, 1) > 0) fail_idx(path, "has data after the " + std::to_string(count) + " bytes its header announces");
  return array;
}

void write_idx(const std::string& path, const std::vector<std::int64_t>& shape, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> bytes = {0, 0, 0x08, static_cast<std::uint8_t>(shape.size())};
  for (std::int64_t size : shape)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>(size >> shift));
  bytes.insert(bytes.end(), data.begin(), data.end());
  write_file_atomically(path, bytes);
}

}  // namespace ddpm::tools
