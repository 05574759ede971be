#pragma once
// The Fréchet distance between two Gaussians fitted to feature sets (FID, Heusel et al.
// 2017): |μ_a - μ_b|² + tr Σ_a + tr Σ_b - 2 tr (Σ_a Σ_b)^½.
#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

struct FeatureStatistics {
  std::int64_t count = 0, width = 0;
  std::vector<double> mean;        // [width]
  std::vector<double> covariance;  // [width, width] row-major, divided by count - 1 (numpy.cov)
};

// features [N, D] with N >= 2, summed in double in row order.
FeatureStatistics feature_statistics(const Tensor& features);

// tr (Σ_a Σ_b)^½ is Σ √λ over the eigenvalues λ of Σ_a^½ Σ_b Σ_a^½ (symmetric, so Eigen's
// self-adjoint solver applies; eigenvalues that rounding makes negative count as zero),
// rather than a general matrix square root (scipy.linalg.sqrtm), whose imaginary parts
// FID code has to discard.
double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b);

}  // namespace ddpm::diffusion
