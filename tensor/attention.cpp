#include "tensor/attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/gemm/gemm.hpp"
#include "tensor/parallel.hpp"

namespace ddpm {
namespace {

struct Sizes {
  std::int64_t batch, length, channels;
};

Sizes check_attention(const char* op, const Tensor& query, const Tensor& key, const Tensor& value) {
  check(query.rank() == 3, op, "query must be [B, L, C], got ", shape_string(query.shape()));
  check(key.shape() == query.shape() && value.shape() == query.shape(), op, "query, key and value shapes differ: ",
        shape_string(query.shape()), ", ", shape_string(key.shape()), ", ", shape_string(value.shape()));
  check(key.dtype() == query.dtype() && value.dtype() == query.dtype(), op, "query, key and value dtypes differ");
  return {query.size(0), query.size(1), query.size(2)};
}

// P = softmax(Q Kᵀ · scale) for one image, into `probabilities` [L, L], row by row.
template <class T>
void attention_probabilities(const T* q, const T* k, const Sizes& s, double scale, T* probabilities) {
  gemm<T>(s.length, s.length, s.channels, static_cast<T>(scale), q, s.channels, 1, k, 1, s.channels, T(0),
          probabilities, s.length);
  for (std::int64_t row = 0; row < s.length; ++row) {
    T* r = probabilities + row * s.length;
    T largest = r[0];
    for (std::int64_t j = 1; j < s.length; ++j) largest = std::max(largest, r[j]);
    T total = 0;
    for (std::int64_t j = 0; j < s.length; ++j) total += (r[j] = std::exp(r[j] - largest));
    const T inverse = T(1) / total;
    for (std::int64_t j = 0; j < s.length; ++j) r[j] *= inverse;
  }
}

}  // namespace

Tensor attention(const Tensor& query, const Tensor& key, const Tensor& value, double scale) {
  const Sizes s = check_attention("attention", query, key, value);
  const Tensor q = query.contiguous(), k = key.contiguous(), v = value.contiguous();
  Tensor output = Tensor::empty(query.shape(), query.dtype());
  dispatch_floating(query.dtype(), "attention", [&]<class T>() {
    const std::int64_t stride = s.length * s.channels;
    parallel_for(s.batch, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<T> probabilities(static_cast<std::size_t>(s.length * s.length));
      for (std::int64_t b = begin; b < end; ++b) {
        attention_probabilities(q.data<T>() + b * stride, k.data<T>() + b * stride, s, scale, probabilities.data());
        gemm<T>(s.length, s.channels, s.length, T(1), probabilities.data(), s.length, 1, v.data<T>() + b * stride,
                s.channels, 1, T(0), output.data<T>() + b * stride, s.channels);
      }
    });
  });
  return output;
}

AttentionGradients attention_backward(const Tensor& output_gradient, const Tensor& query, const Tensor& key,
                                      const Tensor& value, double scale) {
  const Sizes s = check_attention("attention_backward", query, key, value);
  check(output_gradient.shape() == query.shape(), "attention_backward", "output gradient shape ",
        shape_string(output_gradient.shape()), " differs from ", shape_string(query.shape()));
  const Tensor q = query.contiguous(), k = key.contiguous(), v = value.contiguous(), dout = output_gradient.contiguous();
  AttentionGradients gradients{Tensor::empty(query.shape(), query.dtype()), Tensor::empty(query.shape(), query.dtype()),
                               Tensor::empty(query.shape(), query.dtype())};
  dispatch_floating(query.dtype(), "attention_backward", [&]<class T>() {
    const std::int64_t stride = s.length * s.channels, area = s.length * s.length;
    parallel_for(s.batch, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<T> probabilities(static_cast<std::size_t>(area)), d_scores(static_cast<std::size_t>(area));
      for (std::int64_t b = begin; b < end; ++b) {
        const T* qb = q.data<T>() + b * stride;
        const T* kb = k.data<T>() + b * stride;
        const T* vb = v.data<T>() + b * stride;
        const T* gb = dout.data<T>() + b * stride;
        T* P = probabilities.data();
        T* dS = d_scores.data();
        attention_probabilities(qb, kb, s, scale, P);
        // dV = Pᵀ dO;  dP = dO Vᵀ
        gemm<T>(s.length, s.channels, s.length, T(1), P, 1, s.length, gb, s.channels, 1, T(0),
                gradients.value.data<T>() + b * stride, s.channels);
        gemm<T>(s.length, s.length, s.channels, T(1), gb, s.channels, 1, vb, 1, s.channels, T(0), dS, s.length);
        // dS = P ⊙ (dP - rowsum(dP ⊙ P)) · scale (the scale of the scores folded in here)
        for (std::int64_t row = 0; row < s.length; ++row) {
          T dot = 0;
          for (std::int64_t j = 0; j < s.length; ++j) dot += dS[row * s.length + j] * P[row * s.length + j];
          for (std::int64_t j = 0; j < s.length; ++j)
            dS[row * s.length + j] = P[row * s.length + j] * (dS[row * s.length + j] - dot) * static_cast<T>(scale);
        }
        // dQ = dS K;  dK = dSᵀ Q
        gemm<T>(s.length, s.channels, s.length, T(1), dS, s.length, 1, kb, s.channels, 1, T(0),
                gradients.query.data<T>() + b * stride, s.channels);
        gemm<T>(s.length, s.channels, s.length, T(1), dS, 1, s.length, qb, s.channels, 1, T(0),
                gradients.key.data<T>() + b * stride, s.channels);
      }
    });
  });
  return gradients;
}

Tensor upsample_nearest2x(const Tensor& input) {
  check(input.rank() == 4, "upsample_nearest2x", "input must be [N, C, H, W], got ", shape_string(input.shape()));
  const Tensor x = input.contiguous();
  const std::int64_t planes = input.size(0) * input.size(1), height = input.size(2), width = input.size(3);
  Tensor output = Tensor::empty({input.size(0), input.size(1), 2 * height, 2 * width}, input.dtype());
  dispatch_floating(input.dtype(), "upsample_nearest2x", [&]<class T>() {
    const T* in = x.data<T>();
    T* out = output.data<T>();
    parallel_for(planes, std::max<std::int64_t>(1, 4096 / (height * width)), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t plane = begin; plane < end; ++plane)
        for (std::int64_t y = 0; y < 2 * height; ++y) {
          const T* source = in + (plane * height + y / 2) * width;
          T* destination = out + (plane * 2 * height + y) * 2 * width;
          for (std::int64_t xx = 0; xx < 2 * width; ++xx) destination[xx] = source[xx / 2];
        }
    });
  });
  return output;
}

Tensor upsample_nearest2x_backward(const Tensor& output_gradient) {
  check(output_gradient.rank() == 4 && output_gradient.size(2) % 2 == 0 && output_gradient.size(3) % 2 == 0,
        "upsample_nearest2x_backward", "output gradient must be [N, C, 2H, 2W], got ",
        shape_string(output_gradient.shape()));
  const Tensor g = output_gradient.contiguous();
  const std::int64_t planes = g.size(0) * g.size(1), height = g.size(2) / 2, width = g.size(3) / 2;
  Tensor input_gradient = Tensor::empty({g.size(0), g.size(1), height, width}, g.dtype());
  dispatch_floating(g.dtype(), "upsample_nearest2x_backward", [&]<class T>() {
    const T* in = g.data<T>();
    T* out = input_gradient.data<T>();
    parallel_for(planes, std::max<std::int64_t>(1, 4096 / (height * width)), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t plane = begin; plane < end; ++plane)
        for (std::int64_t y = 0; y < height; ++y)
          for (std::int64_t xx = 0; xx < width; ++xx) {
            const T* top = in + (plane * 2 * height + 2 * y) * 2 * width + 2 * xx;
            const T* bottom = top + 2 * width;
            out[(plane * height + y) * width + xx] = (top[0] + top[1]) + (bottom[0] + bottom[1]);
          }
    });
  });
  return input_gradient;
}

}  // namespace ddpm
