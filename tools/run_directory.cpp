#include "tools/run_directory.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "nn/atomic_file.hpp"

namespace ddpm::tools {
namespace fs = std::filesystem;

RunDirectory::RunDirectory(const std::string& path) : path_(path) {
  std::error_code error;
  fs::create_directories(path, error);
  if (error || !fs::is_directory(path))
    throw std::runtime_error("--out " + path + ": cannot create the output directory: " + error.message());
  // Creating the lock file also proves, before any training, that the directory is writable.
  const std::string lock = file(".lock");
  lock_descriptor_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_descriptor_ < 0)
    throw std::runtime_error("--out " + path + ": directory is not writable (cannot create " + lock + ": " +
                             std::strerror(errno) + ")");
  if (::flock(lock_descriptor_, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t got = ::pread(lock_descriptor_, holder, sizeof holder - 1, 0);
    ::close(lock_descriptor_);
    throw std::runtime_error("--out " + path + ": another training run is using this directory" +
                             (got > 0 ? " (process " + std::string(holder, static_cast<std::size_t>(got)) + ")" : ""));
  }
  // The process number only serves a second run's message: the lock holds without it.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(lock_descriptor_, 0) == 0 && ::pwrite(lock_descriptor_, pid.data(), pid.size(), 0) < 0) {
  }
  // Temporary files of interrupted writes (NAME.tmp.PID): no other run can be writing them
  // while this one holds the lock.
  for (const auto& entry : fs::directory_iterator(path, error))
    if (entry.is_regular_file() && entry.path().filename().string().find(".tmp.") != std::string::npos)
      fs::remove(entry.path(), error);
  if (fs::exists(checkpoint_path()) && !fs::is_regular_file(checkpoint_path()))
    throw std::runtime_error(checkpoint_path() + ": exists and is not a regular file");
}

RunDirectory::~RunDirectory() { ::close(lock_descriptor_); }

std::string RunDirectory::file(const std::string& name) const { return (fs::path(path_) / name).string(); }

std::string RunDirectory::checkpoint_in(const std::string& directory) {
  return (fs::path(directory) / "checkpoint.safetensors").string();
}

bool RunDirectory::holds_run() const { return fs::exists(checkpoint_path()) || fs::exists(log_path()); }

void RunDirectory::truncate_log(std::int64_t step) const {
  std::ifstream in(log_path(), std::ios::binary);
  if (!in) return;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Rows end in a newline; text after the last one is a row a kill cut short.
  std::string kept;
  bool header = true;
  for (std::size_t begin = 0, end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
    const std::string line = text.substr(begin, end - begin);
    if (!header) {
      const std::size_t comma = line.find(',');
      const std::string first = line.substr(0, comma);
      const bool numbered = comma != std::string::npos && !first.empty() &&
                            first.find_first_not_of("0123456789") == std::string::npos;
      if (!numbered || std::stoll(first) > step) continue;
    }
    kept += line + "\n";
    header = false;
  }
  write_text_file_atomically(log_path(), kept);
}

}  // namespace ddpm::tools
