#pragma once
// Every file the project writes (checkpoints, PNG, IDX, JSON, CSV rewrites) goes through
// here: a temporary file in the same directory, written whole, synced and renamed, so a
// reader never sees a half-written file, and a failure (a full disk, a missing directory)
// is an error naming the file that leaves the previous one as it was.
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ddpm {

class FileWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes);
void write_text_file_atomically(const std::string& path, std::string_view text);

}  // namespace ddpm
