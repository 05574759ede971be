#include "tensor/storage.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace ddpm {
namespace {

// Large buffers are kept after release and handed out again for the same size. A training
// step allocates the same shapes every time; without this cache each fresh buffer from the
// system is page-faulted in on first touch, which halves the bandwidth of every
// elementwise op on big tensors.
class BufferCache {
 public:
  static constexpr std::size_t smallest_cached = 1 << 16;
  static constexpr std::size_t capacity = std::size_t{1} << 30;

  void* take(std::size_t bytes) {
    if (bytes >= smallest_cached) {
      std::lock_guard lock(mutex_);
      auto found = free_.find(bytes);
      if (found != free_.end() && !found->second.empty()) {
        void* buffer = found->second.back();
        found->second.pop_back();
        cached_bytes_ -= bytes;
        return buffer;
      }
    }
    void* buffer = std::aligned_alloc(Storage::alignment, bytes);
    if (!buffer) throw std::bad_alloc();
    return buffer;
  }

  void give_back(void* buffer, std::size_t bytes) {
    if (bytes >= smallest_cached) {
      std::lock_guard lock(mutex_);
      if (cached_bytes_ + bytes <= capacity) {
        free_[bytes].push_back(buffer);
        cached_bytes_ += bytes;
        return;
      }
    }
    std::free(buffer);
  }

  ~BufferCache() {
    for (auto& [bytes, buffers] : free_)
      for (void* buffer : buffers) std::free(buffer);
  }

 private:
  std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_bytes_ = 0;
};

BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache();  // never destroyed: storages may outlive statics
  return *cache;
}

std::size_t rounded_size(std::size_t bytes) {
  // aligned_alloc wants a multiple of the alignment; never zero.
  const std::size_t rounded = (bytes + Storage::alignment - 1) / Storage::alignment * Storage::alignment;
  return rounded == 0 ? Storage::alignment : rounded;
}

}  // namespace

Storage::Storage(std::size_t bytes) : bytes_(bytes) { data_ = buffer_cache().take(rounded_size(bytes)); }

Storage::~Storage() { buffer_cache().give_back(data_, rounded_size(bytes_)); }

}  // namespace ddpm
