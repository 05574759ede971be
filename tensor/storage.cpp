#include "tensor/storage.hpp"

#include <sys/mman.h>
#include <unistd.h>

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
// cache each fresh buffer is page-faulted in (and zeroed by the kernel) on first touch,
// which halves the bandwidth of every elementwise op on big tensors.
//
// The cache never lets live + cached bytes exceed the most ever live at once. Within that
// bound the cached pages are a pool: a request that no cached buffer matches maps fresh
// pages while there is room, and otherwise is built from cached pages without faulting
// any: a larger buffer is split (its tail stays cached), or the largest cached buffers are
// moved side by side into one range with mremap (which moves pages, not bytes). Only what
// the pool cannot cover is faulted in, and the oldest cached buffers are unmapped when the
// bound is passed. A cache keyed by size alone would keep, for every size, as many buffers
// as were ever live together (about 20% more than the peak in a U-Net training step), and
// glibc's heap would keep more (fragmentation): the process's resident memory follows the
// peak of live memory.
class BufferCache {
 public:
  static constexpr std::size_t smallest_mapped = std::size_t{1} << 18;

  void* take(std::size_t bytes) {
    note_taken(bytes);
    if (bytes < smallest_mapped) {
      void* buffer = std::aligned_alloc(Storage::alignment, bytes);
      if (!buffer) {
        live_bytes_ -= bytes;
        throw std::bad_alloc();
      }
      return buffer;
    }
    std::lock_guard lock(mutex_);
    if (auto found = by_size_.find(bytes); found != by_size_.end()) return take_entry(found).buffer;
    const std::size_t limit = most_ever_live_.load();
    void* buffer = live_bytes_.load() + cached_bytes_ > limit ? assemble_from_cache(bytes) : nullptr;
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
    most_ever_live_ = live_bytes_.load();  // the bound is learnt again from here
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
  // Under the mutex: `bytes` (whole pages) made of cached pages, the rest fresh, or nullptr
  // when nothing is cached or the kernel refuses a mapping.
  void* assemble_from_cache(std::size_t bytes) {
    if (by_size_.empty()) return nullptr;
    auto larger = by_size_.lower_bound(bytes);
    if (larger != by_size_.end()) {  // the best fit, split
      const Entry taken = take_entry(larger);
      keep_or_unmap(static_cast<char*>(taken.buffer) + bytes, taken.bytes - bytes);
      return taken.buffer;
    }
    // The largest buffers moved into one reserved range, in order; a tail of fresh pages.
    char* range = static_cast<char*>(mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (range == MAP_FAILED) return nullptr;
    std::size_t filled = 0;
    while (filled < bytes && !by_size_.empty()) {
      const Entry taken = take_entry(std::prev(by_size_.end()));
      const std::size_t used = std::min(taken.bytes, bytes - filled);
      keep_or_unmap(static_cast<char*>(taken.buffer) + used, taken.bytes - used);
      if (mremap(taken.buffer, used, used, MREMAP_MAYMOVE | MREMAP_FIXED, range + filled) == MAP_FAILED) {
        munmap(taken.buffer, used);
        break;
      }
      filled += used;
    }
    if (filled < bytes && mmap(range + filled, bytes - filled, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
      munmap(range, bytes);
      return nullptr;
    }
    return range;
  }
  Entry take_entry(std::map<std::size_t, std::vector<Entries::iterator>>::iterator same_size) {
    const Entries::iterator entry = same_size->second.back();
    const Entry taken = *entry;
    forget(same_size, entry);
    return taken;
  }
  // The tail of a split buffer stays cached when large enough to be worth a mapping.
  void keep_or_unmap(void* tail, std::size_t bytes) {
    if (bytes == 0) return;
    if (bytes < smallest_mapped) {
      munmap(tail, bytes);
      return;
    }
    oldest_first_.push_front({tail, bytes});  // first to go when the bound is passed
    by_size_[bytes].push_back(oldest_first_.begin());
    cached_bytes_ += bytes;
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
  std::atomic<std::size_t> most_ever_live_{0};  // the cache's bound; reset by release()
};

BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache();  // never destroyed: storages may outlive statics
  return *cache;
}

std::size_t rounded_size(std::size_t bytes) {
  // Mapped buffers are whole pages (the cache splits and moves them page by page);
  // aligned_alloc wants a multiple of the alignment; never zero.
  static const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (bytes >= BufferCache::smallest_mapped) return (bytes + page - 1) / page * page;
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
