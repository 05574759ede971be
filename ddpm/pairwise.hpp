#pragma once
// Dot products and Euclidean distances between the rows of two point sets (the features of
// images, or their pixels), block by block: 10k x 60k distances never need 10k x 60k
// floats at once. Dot products come from the engine's GEMM, in fixed blocks of rows of
// the first set, and every sum runs in a fixed order: the same bits on any thread count,
// whatever batches the caller computed the points in.
#include <cstdint>
#include <functional>
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// a [N, D], b [M, D] float32: visit(first_row, rows, dots) for consecutive blocks of rows
// of a, where dots[r * M + j] = a[first_row + r] · b[j].
void for_each_dot_product_block(const Tensor& a, const Tensor& b,
                                const std::function<void(std::int64_t first_row, std::int64_t rows, const float* dots)>& visit);

// points [N, D] -> for each row, the distance to its k-th nearest other row (1 <= k < N).
std::vector<double> kth_neighbour_distances(const Tensor& points, std::int64_t k);

// queries [N, D], reference [M, D] -> for each query, the distance to the nearest reference row.
std::vector<double> nearest_distances(const Tensor& queries, const Tensor& reference);

// The fraction of queries [N, D] that lie within radii[j] (inclusive) of some centre j of
// centres [M, D]: the k-NN manifold membership of improved precision and recall.
double fraction_within(const Tensor& queries, const Tensor& centres, const std::vector<double>& radii);

}  // namespace ddpm::diffusion
