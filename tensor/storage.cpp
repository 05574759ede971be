#include "tensor/storage.hpp"

#include <cstdlib>
#include <new>

namespace ddpm {

Storage::Storage(std::size_t bytes) : bytes_(bytes) {
  // aligned_alloc wants a size that is a multiple of the alignment; never zero.
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  data_ = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (!data_) throw std::bad_alloc();
}

Storage::~Storage() { std::free(data_); }

}  // namespace ddpm
