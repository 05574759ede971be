#include "tensor/parallel.hpp"

#include <memory>
#include <mutex>

#include <tbb/global_control.h>
#include <tbb/info.h>

namespace ddpm {
namespace {
std::mutex control_mutex;
std::unique_ptr<tbb::global_control> thread_limit;
int chosen_threads = 0;
}  // namespace

void set_num_threads(int threads) {
  std::lock_guard lock(control_mutex);
  thread_limit.reset();
  chosen_threads = threads > 0 ? threads : 0;
  if (chosen_threads > 0)
    thread_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                         static_cast<std::size_t>(chosen_threads));
}

int num_threads() {
  const int limit = static_cast<int>(
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  return limit;
}

}  // namespace ddpm
