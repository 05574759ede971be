#include "nn/atomic_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace ddpm {

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (descriptor < 0) throw FileWriteError(path + ": cannot create " + temporary + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t result = ::write(descriptor, bytes.data() + written, bytes.size() - written);
    if (result < 0 && errno == EINTR) continue;
    if (result <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(descriptor);
      ::unlink(temporary.c_str());
      throw FileWriteError(path + ": write failed after " + std::to_string(written) + " of " +
                             std::to_string(bytes.size()) + " bytes: " + reason + " (the previous file, if any, is untouched)");
    }
    written += static_cast<std::size_t>(result);
  }
  if (::fsync(descriptor) != 0 || ::close(descriptor) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw FileWriteError(path + ": could not flush " + temporary + ": " + reason);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw FileWriteError(path + ": could not rename " + temporary + " into place: " + reason);
  }
}

void write_text_file_atomically(const std::string& path, std::string_view text) {
  write_file_atomically(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

}  // namespace ddpm
