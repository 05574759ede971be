#pragma once
// The IDX and PNG readers take paths: each input goes to a per-process scratch file.
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

inline std::string write_fuzz_input(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static const std::string path = "/tmp/ddpm-fuzz-" + std::to_string(::getpid()) + suffix;
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file) {
    std::fwrite(data, 1, size, file);
    std::fclose(file);
  }
  return path;
}
