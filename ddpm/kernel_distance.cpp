#include "ddpm/kernel_distance.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ddpm/pairwise.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::diffusion {
namespace {

// Sums of k over the pairs of a block of rows, in total and per subset, leaving out i == j
// when the two sets are one. Rows are summed separately (in parallel) and then in order.
struct KernelSums {
  double total = 0;
  std::vector<double> per_subset;
};

KernelSums kernel_sums(const Tensor& a, const Tensor& b, bool same_set, std::int64_t subsets) {
  const std::int64_t columns = b.size(0);
  const double width = static_cast<double>(a.size(1));
  std::vector<double> row_totals(static_cast<std::size_t>(a.size(0))), row_subset(row_totals.size());
  for_each_dot_product_block(a, b, [&](std::int64_t first, std::int64_t rows, const float* dots) {
    parallel_for(rows, 8, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const std::int64_t i = first + r;
        double total = 0, subset = 0;
        for (std::int64_t j = 0; j < columns; ++j) {
          if (same_set && j == i) continue;
          const double base = static_cast<double>(dots[r * columns + j]) / width + 1.0;
          const double k = base * base * base;
          total += k;
          if (subsets > 0 && j % subsets == i % subsets) subset += k;
        }
        row_totals[static_cast<std::size_t>(i)] = total;
        row_subset[static_cast<std::size_t>(i)] = subset;
      }
    });
  });
  KernelSums sums;
  sums.per_subset.assign(static_cast<std::size_t>(std::max<std::int64_t>(subsets, 0)), 0.0);
  for (std::size_t i = 0; i < row_totals.size(); ++i) {
    sums.total += row_totals[i];
    if (subsets > 0) sums.per_subset[i % static_cast<std::size_t>(subsets)] += row_subset[i];
  }
  return sums;
}

// Members of subset s among n rows: those i < n with i % subsets == s.
double members(std::int64_t n, std::int64_t subsets, std::int64_t s) {
  return static_cast<double>((n - s + subsets - 1) / subsets);
}

}  // namespace

KernelDistance kernel_distance(const Tensor& a, const Tensor& b, std::int64_t subsets) {
  check(a.rank() == 2 && b.rank() == 2 && a.size(0) >= 2 && b.size(0) >= 2, "kernel_distance",
        "needs two sets of at least two feature rows [N, D], got ", shape_string(a.shape()), " and ", shape_string(b.shape()));
  // Each subset needs two rows of each set for its own unbiased estimate.
  const std::int64_t usable = std::min({subsets, a.size(0) / 2, b.size(0) / 2});
  const std::int64_t split = usable >= 2 ? usable : 0;
  const KernelSums aa = kernel_sums(a, a, true, split), bb = kernel_sums(b, b, true, split), ab = kernel_sums(a, b, false, split);
  auto estimate = [](double sum_aa, double sum_bb, double sum_ab, double n, double m) {
    return sum_aa / (n * (n - 1)) + sum_bb / (m * (m - 1)) - 2.0 * sum_ab / (n * m);
  };
  KernelDistance result;
  result.estimate = estimate(aa.total, bb.total, ab.total, static_cast<double>(a.size(0)), static_cast<double>(b.size(0)));
  result.subsets = split;
  result.standard_error = NAN;
  if (split >= 2) {
    std::vector<double> values;
    for (std::int64_t s = 0; s < split; ++s)
      values.push_back(estimate(aa.per_subset[static_cast<std::size_t>(s)], bb.per_subset[static_cast<std::size_t>(s)],
                                ab.per_subset[static_cast<std::size_t>(s)], members(a.size(0), split, s),
                                members(b.size(0), split, s)));
    double mean = 0, squares = 0;
    for (double v : values) mean += v;
    mean /= static_cast<double>(split);
    for (double v : values) squares += (v - mean) * (v - mean);
    // A subset holds 1/split of the rows, so its estimate's variance is about split times
    // the whole set's (more under equal distributions, where the variance goes as 1/n²:
    // then this errs on the large side): the subsets' spread / √split estimates the error.
    result.standard_error = std::sqrt(squares / static_cast<double>(split - 1)) / std::sqrt(static_cast<double>(split));
  }
  return result;
}

}  // namespace ddpm::diffusion
