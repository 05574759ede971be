#include "tensor/convolution/winograd.hpp"

#include <algorithm>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/convolution/winograd_body.hpp"

namespace ddpm::convolution_detail {

bool winograd_suits(const Geometry& g) {
  return g.kernel_height == 3 && g.kernel_width == 3 && g.stride == 1 && g.dilation == 1 &&
         g.in_channels >= winograd::minimum_channels && g.out_channels >= winograd::minimum_channels;
}

namespace {

// Transformed, packed weights kept from one call to the next: a sampling run calls each
// convolution with the same weights hundreds of times, and their transform (16/9 of the
// weights, scattered into panels) would otherwise be redone at every call. An entry is
// found by the weights' address and shape and the microkernel, and its transform used only
// if it holds a copy of the same weight bytes: a changed weight (a training step), or
// another tensor at a reused address, is packed anew, never served stale. A transform is
// kept from the second call that sees the same bytes on, so a training run, whose weights
// change at every step, keeps only the copies of its weights (the size of the model), not
// their transforms. The cache keeps the last `capacity` entries (a U-Net has some 30 of
// these convolutions).
template <class T>
class TransformedWeightCache {
 public:
  static constexpr std::size_t capacity = 64;
  using Packed = std::shared_ptr<const gemm_detail::AlignedBuffer<T>>;

  Packed packed(const winograd::WinogradLayout<xsimd::batch<T>>& layout, std::int64_t channels, std::int64_t outputs,
                const T* weight) {
    const std::size_t count = static_cast<std::size_t>(outputs * channels * 9);
    std::lock_guard lock(mutex_);
    auto entry = entries_.begin();
    for (; entry != entries_.end(); ++entry)
      if (entry->address == weight && entry->channels == channels && entry->outputs == outputs &&
          entry->kernel == layout.kernel.name)
        break;
    const bool same_weights = entry != entries_.end() && std::equal(weight, weight + count, entry->weights.begin());
    if (same_weights && entry->packed) {
      entries_.splice(entries_.begin(), entries_, entry);  // most recently used first
      return entry->packed;
    }
    auto packed = std::make_shared<const gemm_detail::AlignedBuffer<T>>(
        winograd::pack_transformed_weights(layout, channels, outputs, weight));
    if (same_weights) {  // seen twice unchanged: keep the transform
      entry->packed = packed;
      entries_.splice(entries_.begin(), entries_, entry);
      return packed;
    }
    if (entry != entries_.end()) entries_.erase(entry);
    entries_.push_front({weight, channels, outputs, layout.kernel.name, std::vector<T>(weight, weight + count), nullptr});
    if (entries_.size() > capacity) entries_.pop_back();
    return packed;
  }

 private:
  struct Entry {
    const T* address;
    std::int64_t channels, outputs;
    std::string kernel;
    std::vector<T> weights;
    Packed packed;  // null until the same weights come a second time
  };
  std::mutex mutex_;
  std::list<Entry> entries_;
};

template <class T>
TransformedWeightCache<T>& transformed_weight_cache() {
  static auto* cache = new TransformedWeightCache<T>();  // never destroyed: used until exit
  return *cache;
}

}  // namespace

// The transforms run on the compiler's vectors, the products on the microkernel in use;
// the layout fits both (winograd_body.hpp).
template <class T>
void correlate_winograd(const Geometry& g, const T* input, const T* weight, const T* bias, T* out,
                        WeightLifetime lifetime, const InputFusion<T>& input_fusion,
                        const T* image_bias) {
  using Vector = xsimd::batch<T>;
  const auto& kernel = gemm_detail::active_microkernel<T>();
  if (lifetime == WeightLifetime::ThisCall)
    return winograd::correlate<Vector>(kernel, input, g.batch, g.in_channels, g.height, g.width, g.padding,
                                       g.out_channels, weight, bias, out, input_fusion, image_bias);
  const winograd::WinogradLayout<Vector> layout(kernel, g.in_channels, g.height, g.width, g.padding, g.out_channels);
  const auto packed = transformed_weight_cache<T>().packed(layout, g.in_channels, g.out_channels, weight);
  winograd::correlate_packed<Vector>(kernel, input, g.batch, g.in_channels, g.height, g.width, g.padding,
                                     g.out_channels, packed->data, bias, out, input_fusion, image_bias);
}

template <class T>
void weight_gradient_winograd(const Geometry& g, const T* input, const T* output_gradient, T* weight_gradient) {
  winograd::weight_gradient<xsimd::batch<T>>(gemm_detail::active_microkernel<T>(), input, g.batch, g.in_channels,
                                             g.height, g.width, g.padding, g.out_channels, output_gradient,
                                             weight_gradient);
}

#define DDPM_INSTANTIATE_WINOGRAD(T)                                                                                 \
  template void correlate_winograd<T>(const Geometry&, const T*, const T*, const T*, T*, WeightLifetime,       \
                                      const InputFusion<T>&, const T*);                      \
  template void weight_gradient_winograd<T>(const Geometry&, const T*, const T*, T*);
DDPM_INSTANTIATE_WINOGRAD(float)
DDPM_INSTANTIATE_WINOGRAD(double)
#undef DDPM_INSTANTIATE_WINOGRAD

}  // namespace ddpm::convolution_detail
