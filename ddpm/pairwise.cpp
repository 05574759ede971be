#include "ddpm/pairwise.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/matmul.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::diffusion {
namespace {

// Rows of `a` per GEMM: a block of dot products with 60k reference rows stays under 64 MB.
constexpr std::int64_t block_rows = 256;

Tensor checked_points(const Tensor& points, const char* op, const char* name) {
  check(points.rank() == 2, op, name, " must be [N, D] points, got ", shape_string(points.shape()));
  return points.to(DType::Float32).contiguous();
}

std::vector<double> squared_norms(const Tensor& points) {
  const std::int64_t rows = points.size(0), width = points.size(1);
  const float* data = points.data<float>();
  std::vector<double> norms(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::int64_t d = 0; d < width; ++d) sum += static_cast<double>(data[r * width + d]) * data[r * width + d];
    norms[static_cast<std::size_t>(r)] = sum;
  }
  return norms;
}

// visit(row, squared distances of that row to every row of b) for each row of a, rows in
// parallel (each row's work is its own: no shared sums).
void for_each_distance_row(const Tensor& a, const Tensor& b,
                           const std::function<void(std::int64_t row, const float* dots, double norm, const std::vector<double>& norms)>& visit) {
  const std::vector<double> a_norms = squared_norms(a), b_norms = squared_norms(b);
  for_each_dot_product_block(a, b, [&](std::int64_t first, std::int64_t rows, const float* dots) {
    parallel_for(rows, 8, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r)
        visit(first + r, dots + r * b.size(0), a_norms[static_cast<std::size_t>(first + r)], b_norms);
    });
  });
}

// |a|² + |b|² - 2 a·b, which rounding can take just below zero for (near) equal points.
double squared_distance(double norm_a, double norm_b, float dot) {
  return std::max(0.0, norm_a + norm_b - 2.0 * static_cast<double>(dot));
}

}  // namespace

void for_each_dot_product_block(const Tensor& a_points, const Tensor& b_points,
                                const std::function<void(std::int64_t, std::int64_t, const float*)>& visit) {
  const Tensor a = checked_points(a_points, "pairwise", "the first set");
  const Tensor b = checked_points(b_points, "pairwise", "the second set");
  check(a.size(1) == b.size(1), "pairwise", "points of ", a.size(1), " and ", b.size(1), " dimensions cannot be compared");
  const Tensor b_transposed = b.transpose(0, 1);
  for (std::int64_t first = 0; first < a.size(0); first += block_rows) {
    const std::int64_t rows = std::min(block_rows, a.size(0) - first);
    const Tensor dots = matmul(a.narrow(0, first, rows), b_transposed).contiguous();
    visit(first, rows, dots.data<float>());
  }
}

std::vector<double> kth_neighbour_distances(const Tensor& points_in, std::int64_t k) {
  const Tensor points = checked_points(points_in, "kth_neighbour_distances", "points");
  const std::int64_t count = points.size(0);
  check(k >= 1 && k < count, "kth_neighbour_distances", "k = ", k, " needs more than k points, got ", count);
  std::vector<double> result(static_cast<std::size_t>(count));
  for_each_distance_row(points, points, [&](std::int64_t row, const float* dots, double norm, const std::vector<double>& norms) {
    std::vector<double> nearest;  // the k smallest so far, ascending
    nearest.reserve(static_cast<std::size_t>(k) + 1);
    for (std::int64_t j = 0; j < count; ++j) {
      if (j == row) continue;
      const double d = squared_distance(norm, norms[static_cast<std::size_t>(j)], dots[j]);
      if (static_cast<std::int64_t>(nearest.size()) == k && d >= nearest.back()) continue;
      nearest.insert(std::upper_bound(nearest.begin(), nearest.end(), d), d);
      if (static_cast<std::int64_t>(nearest.size()) > k) nearest.pop_back();
    }
    result[static_cast<std::size_t>(row)] = std::sqrt(nearest.back());
  });
  return result;
}

std::vector<double> nearest_distances(const Tensor& queries_in, const Tensor& reference_in) {
  const Tensor queries = checked_points(queries_in, "nearest_distances", "queries");
  const Tensor reference = checked_points(reference_in, "nearest_distances", "reference");
  check(reference.size(0) >= 1, "nearest_distances", "the reference set is empty");
  std::vector<double> result(static_cast<std::size_t>(queries.size(0)));
  for_each_distance_row(queries, reference, [&](std::int64_t row, const float* dots, double norm, const std::vector<double>& norms) {
    double best = INFINITY;
    for (std::int64_t j = 0; j < reference.size(0); ++j)
      best = std::min(best, squared_distance(norm, norms[static_cast<std::size_t>(j)], dots[j]));
    result[static_cast<std::size_t>(row)] = std::sqrt(best);
  });
  return result;
}

double fraction_within(const Tensor& queries_in, const Tensor& centres_in, const std::vector<double>& radii) {
  const Tensor queries = checked_points(queries_in, "fraction_within", "queries");
  const Tensor centres = checked_points(centres_in, "fraction_within", "centres");
  check(static_cast<std::int64_t>(radii.size()) == centres.size(0), "fraction_within", radii.size(), " radii for ",
        centres.size(0), " centres");
  check(queries.size(0) >= 1, "fraction_within", "no queries");
  std::vector<double> squared_radii;
  for (double r : radii) squared_radii.push_back(r * r);
  std::vector<char> inside(static_cast<std::size_t>(queries.size(0)), 0);
  for_each_distance_row(queries, centres, [&](std::int64_t row, const float* dots, double norm, const std::vector<double>& norms) {
    for (std::int64_t j = 0; j < centres.size(0); ++j)
      if (squared_distance(norm, norms[static_cast<std::size_t>(j)], dots[j]) <= squared_radii[static_cast<std::size_t>(j)]) {
        inside[static_cast<std::size_t>(row)] = 1;
        return;
      }
  });
  return static_cast<double>(std::count(inside.begin(), inside.end(), 1)) / static_cast<double>(queries.size(0));
}

}  // namespace ddpm::diffusion
