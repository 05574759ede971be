#pragma once
// How long, for progress lines: "1h05m", "3m07s".
#include <cstdio>
#include <string>

namespace ddpm::tools {

inline std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(seconds);
  char text[32];
  if (total >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total / 60 % 60);
  else std::snprintf(text, sizeof text, "%lldm%02llds", total / 60, total % 60);
  return text;
}

}  // namespace ddpm::tools
