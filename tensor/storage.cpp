#include "tensor/storage.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace ddpm {
namespace {

// Large buffers come straight from mmap and are kept after release, to be handed out again
// for the same size. A training step allocates the same shapes every time; without the
// cache each fresh buffer is page-faulted in on first touch, which halves the bandwidth of
// every elementwise op on big tensors.
//
// The cache never lets live + cached bytes exceed the most ever live at once: a miss first
// unmaps the oldest cached buffers. A cache keyed by size alone would otherwise keep, for
// every size, as many buffers as were ever live together (about 20% more than the peak in
// a U-Net training step), and glibc's heap would keep more (fragmentation): mmap/munmap
// makes the process's resident memory follow live memory.
class BufferCache {
 public:
  static constexpr std::size_t smallest_mapped = std::size_t{1} << 18;

  void* take(std::size_t bytes) {
    note_taken(bytes);
    if (bytes < smallest_mapped) {
      void* buffer = std::aligned_alloc(Storage::alignment, bytes);
      if (!buffer) throw std::bad_alloc();
      return buffer;
    }
    std::lock_guard lock(mutex_);
    auto found = by_size_.find(bytes);
    if (found != by_size_.end()) {
      void* buffer = found->second.back()->buffer;
      forget(found, found->second.back());
      return buffer;
    }
    // A miss reshapes a cached mapping rather than mapping fresh memory: mremap keeps the
    // pages it already has, so only the growth (if any) is faulted in and zeroed by the
    // kernel. Best fit first: the smallest cached buffer at least this large is shrunk in
    // place (its tail goes back to the system); failing that, the largest smaller one grows.
    void* buffer = reshape_cached(bytes);
    const std::size_t limit = most_ever_live_.load();
    while (!oldest_first_.empty() && live_bytes_.load() + cached_bytes_ > limit) unmap_oldest();
    if (buffer) return buffer;
    buffer = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) {
      release_all();  // then try once more with nothing cached
      buffer = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (buffer == MAP_FAILED) {
        live_bytes_ -= bytes;
        throw std::bad_alloc();
      }
    }
    return buffer;
  }

  void give_back(void* buffer, std::size_t bytes) {
    live_bytes_ -= bytes;
    if (bytes < smallest_mapped) {
      std::free(buffer);
      return;
    }
    std::lock_guard lock(mutex_);
    oldest_first_.push_back({buffer, bytes});
    by_size_[bytes].push_back(std::prev(oldest_first_.end()));
    cached_bytes_ += bytes;
  }

  MemoryStatistics statistics() {
    std::lock_guard lock(mutex_);
    return {live_bytes_.load(), peak_live_bytes_.load(), cached_bytes_};
  }
  void reset_peak() { peak_live_bytes_ = live_bytes_.load(); }
  void release() {
    std::lock_guard lock(mutex_);
    release_all();
  }

 private:
  struct Entry {
    void* buffer;
    std::size_t bytes;
  };
  using Entries = std::list<Entry>;

  void note_taken(std::size_t bytes) {
    const std::size_t live = live_bytes_ += bytes;
    for (auto* peak : {&peak_live_bytes_, &most_ever_live_}) {
      std::size_t seen = peak->load();
      while (live > seen && !peak->compare_exchange_weak(seen, live)) {
      }
    }
  }
  // Under the mutex: a cached buffer remapped to `bytes`, or nullptr when nothing is cached
  // (or the kernel refuses the remap; the buffer is then unmapped).
  void* reshape_cached(std::size_t bytes) {
    if (by_size_.empty()) return nullptr;
    auto chosen = by_size_.lower_bound(bytes);
    if (chosen == by_size_.end()) chosen = std::prev(chosen);
    const Entries::iterator entry = chosen->second.back();
    const Entry taken = *entry;
    forget(chosen, entry);
    void* buffer = mremap(taken.buffer, taken.bytes, bytes, MREMAP_MAYMOVE);
    if (buffer == MAP_FAILED) {
      munmap(taken.buffer, taken.bytes);
      return nullptr;
    }
    return buffer;
  }
  // Removes one cached entry from both indexes (the caller owns its mapping now).
  void forget(std::map<std::size_t, std::vector<Entries::iterator>>::iterator same_size, Entries::iterator entry) {
    auto& entries = same_size->second;
    entries.erase(std::find(entries.begin(), entries.end(), entry));
    if (entries.empty()) by_size_.erase(same_size);
    cached_bytes_ -= entry->bytes;
    oldest_first_.erase(entry);
  }
  void unmap_oldest() {
    const Entry entry = oldest_first_.front();
    forget(by_size_.find(entry.bytes), oldest_first_.begin());
    munmap(entry.buffer, entry.bytes);
  }
  void release_all() {
    while (!oldest_first_.empty()) unmap_oldest();
  }

  std::mutex mutex_;
  Entries oldest_first_;                                     // cached buffers by release time
  std::map<std::size_t, std::vector<Entries::iterator>> by_size_;  // the same, by size
  std::size_t cached_bytes_ = 0;
  std::atomic<std::size_t> live_bytes_{0}, peak_live_bytes_{0};
  std::atomic<std::size_t> most_ever_live_{0};  // the cache's limit; never reset
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

MemoryStatistics memory_statistics() { return buffer_cache().statistics(); }
void reset_peak_memory() { buffer_cache().reset_peak(); }
void release_cached_memory() { buffer_cache().release(); }

}  // namespace ddpm
