#pragma once
// The kernel distance of two feature sets (KID, Bińkowski et al. 2018): the unbiased
// estimate of the squared maximum mean discrepancy under the polynomial kernel
// k(x, y) = (x·y / D + 1)³. Unbiased, so two samples of one distribution give about zero
// (it can be slightly negative) at any size, where FID is biased upwards at small N.
#include <cstdint>

#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

struct KernelDistance {
  double estimate = 0;        // over all rows of both sets
  double standard_error = 0;  // from `subsets` disjoint subsets (rows i with i % subsets == s)
  std::int64_t subsets = 0;   // 0 when the sets are too small to split (standard_error NaN)
};

// a [N, D], b [M, D] with N, M >= 2.
KernelDistance kernel_distance(const Tensor& a, const Tensor& b, std::int64_t subsets = 10);

}  // namespace ddpm::diffusion
