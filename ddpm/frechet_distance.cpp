#include "ddpm/frechet_distance.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "tensor/error.hpp"

namespace ddpm::diffusion {
namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const Matrix> as_matrix(const FeatureStatistics& s) {
  return Eigen::Map<const Matrix>(s.covariance.data(), s.width, s.width);
}

// The square root of a symmetric positive semi-definite matrix: V diag(√λ) Vᵀ.
Matrix symmetric_square_root(const Matrix& m) {
  const Eigen::SelfAdjointEigenSolver<Matrix> solver(m);
  const Eigen::VectorXd roots = solver.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return solver.eigenvectors() * roots.asDiagonal() * solver.eigenvectors().transpose();
}

}  // namespace

FeatureStatistics feature_statistics(const Tensor& features_in) {
  check(features_in.rank() == 2 && features_in.size(0) >= 2, "feature_statistics",
        "needs at least two feature rows [N, D], got ", shape_string(features_in.shape()));
  const Tensor features = features_in.to(DType::Float64).contiguous();
  FeatureStatistics s;
  s.count = features.size(0);
  s.width = features.size(1);
  const Eigen::Map<const Matrix> x(features.data<double>(), s.count, s.width);
  const Eigen::RowVectorXd mean = x.colwise().sum() / static_cast<double>(s.count);
  const Matrix centered = x.rowwise() - mean;
  const Matrix covariance = (centered.transpose() * centered) / static_cast<double>(s.count - 1);
  s.mean.assign(mean.data(), mean.data() + s.width);
  s.covariance.assign(covariance.data(), covariance.data() + s.width * s.width);
  return s;
}

double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
  check(a.width == b.width && a.width > 0, "frechet_distance", "features of ", a.width, " and ", b.width,
        " dimensions cannot be compared");
  double mean_term = 0;
  for (std::int64_t d = 0; d < a.width; ++d) {
    const double difference = a.mean[static_cast<std::size_t>(d)] - b.mean[static_cast<std::size_t>(d)];
    mean_term += difference * difference;
  }
  const Matrix root_a = symmetric_square_root(as_matrix(a));
  const Matrix product = root_a * as_matrix(b) * root_a;
  const Eigen::SelfAdjointEigenSolver<Matrix> solver(product, Eigen::EigenvaluesOnly);
  const double trace_root = solver.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  // Never negative in exact arithmetic; rounding can take equal sets a hair below zero.
  return std::max(0.0, mean_term + as_matrix(a).trace() + as_matrix(b).trace() - 2.0 * trace_root);
}

}  // namespace ddpm::diffusion
