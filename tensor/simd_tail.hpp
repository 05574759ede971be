#pragma once
// The last, partial vector of a row at least one vector long is run as the vector ending
// at the row's end, through the same code as the row's body (no scalar libm calls, no
// second code path whose rounding differs): it recomputes lanes already done, which
// rewrite the same values, and sums mask them out with `lanes_from`. This keeps the tail
// in registers; a zero-padded copy goes through memory (a store-forwarding stall per
// row), which cost a 7 x 7 channel row more than its scalar tail did.
#include <cstddef>
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace ddpm {

// True in lanes `first` and after: the lanes of an overlapping last vector not yet done.
template <class T>
xsimd::batch_bool<T> lanes_from(std::int64_t first) {
  alignas(64) T lane_index[xsimd::batch<T>::size];
  for (std::size_t lane = 0; lane < xsimd::batch<T>::size; ++lane) lane_index[lane] = static_cast<T>(lane);
  return xsimd::batch<T>::load_aligned(lane_index) >= xsimd::batch<T>(static_cast<T>(first));
}

}  // namespace ddpm
