#pragma once
// What the benchmarks report of the process itself, from getrusage.
#include <sys/resource.h>

namespace ddpm::bench {

// Peak resident memory of the process so far, in MiB.
inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Minor page faults of the process so far: a step that maps fresh memory (buffers the
// cache could not serve) faults it in page by page.
inline long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

}  // namespace ddpm::bench
