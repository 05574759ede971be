#pragma once
// Matrix products. Operands may be any strided views (a transpose is just a view), so
// autograd's Aᵀ·B and A·Bᵀ never materialise a transposed copy at this interface.
#include "tensor/tensor.hpp"

namespace ddpm {

// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch axes broadcast. 1-D operands are
// not promoted: both must have rank >= 2.
Tensor matmul(const Tensor& a, const Tensor& b);

// C[M, N] = alpha * A[M, K] · B[K, N] + beta * C, on raw strided matrices of one dtype.
// Row i, column j of A is a[i * a_row_stride + j * a_column_stride]; C is row-major with
// leading dimension c_row_stride. The k-loop order is fixed, so results do not depend on
// the thread count.
template <class T>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
          std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride, std::int64_t b_column_stride, T beta,
          T* c, std::int64_t c_row_stride);

// The plain triple loop the fast gemm is tested against.
template <class T>
void gemm_reference(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
                    std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride,
                    std::int64_t b_column_stride, T beta, T* c, std::int64_t c_row_stride);

}  // namespace ddpm
