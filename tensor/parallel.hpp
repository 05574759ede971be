#pragma once
// Parallel loops whose split never depends on the number of threads: [0, count) is cut
// into fixed chunks of `grain` items, and each chunk is one task. A kernel that writes
// chunk-local results, or combines per-chunk partials in chunk order, therefore gives the
// same bits on 1 or 64 threads.
#include <cstdint>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace ddpm {

// Caps the worker threads used by every kernel (0 restores the default: all cores).
void set_num_threads(int threads);
int num_threads();

template <class Body>
void parallel_for(std::int64_t count, std::int64_t grain, Body&& body) {
  if (count <= 0) return;
  if (grain < 1) grain = 1;
  const std::int64_t chunks = (count + grain - 1) / grain;
  if (chunks == 1 || num_threads() == 1) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk)
      body(chunk * grain, chunk + 1 == chunks ? count : (chunk + 1) * grain);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<std::int64_t>& range) {
        for (std::int64_t chunk = range.begin(); chunk < range.end(); ++chunk)
          body(chunk * grain, chunk + 1 == chunks ? count : (chunk + 1) * grain);
      },
      tbb::simple_partitioner());
}

}  // namespace ddpm
