#include "tensor/convolution/winograd.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/convolution.hpp"
#include "tensor/convolution/winograd_body.hpp"

namespace ddpm::convolution_detail {

bool winograd_suits(const Geometry& g) {
  return g.kernel_height == 3 && g.kernel_width == 3 && g.stride == 1 && g.dilation == 1 &&
         g.in_channels >= winograd::minimum_channels && g.out_channels >= winograd::minimum_channels;
}

namespace {

int checked_tile(int tile, const char* source) {
  check(tile == 2 || tile == 4, source, "the Winograd output tile must be 2 or 4, got ", tile);
  return tile;
}

std::atomic<int>& output_tile_setting() {
  static std::atomic<int> setting{[] {
    const char* value = std::getenv("DDPM_WINOGRAD_TILE");
    if (!value || !*value) return 4;
    const std::string text(value);
    check(text == "2" || text == "4", "DDPM_WINOGRAD_TILE", "the Winograd output tile must be 2 or 4, got '", text,
          "'");
    return std::stoi(text);
  }()};
  return setting;
}

// Transformed, packed weights kept from one call to the next: a sampling run calls each
// convolution with the same weights hundreds of times, and their transform (36/9 of the
// weights by F(4x4), 16/9 by F(2x2), scattered into panels) would otherwise be redone at
// every call. An entry is found by the weights' address and shape, the algorithm and the
// microkernel, and its transform used only if it holds a copy of the same weight bytes: a changed weight (a training step), or
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

  template <class Algorithm>
  Packed packed(const winograd::WinogradLayout<xsimd::batch<T>, Algorithm>& layout, std::int64_t channels,
                std::int64_t outputs, const T* weight) {
    const std::size_t count = static_cast<std::size_t>(outputs * channels * 9);
    std::lock_guard lock(mutex_);
    auto entry = entries_.begin();
    for (; entry != entries_.end(); ++entry)
      if (entry->address == weight && entry->channels == channels && entry->outputs == outputs &&
          entry->tile == Algorithm::output_tile && entry->kernel == layout.kernel.name)
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
    entries_.push_front({weight, channels, outputs, Algorithm::output_tile, layout.kernel.name,
                         std::vector<T>(weight, weight + count), nullptr});
    if (entries_.size() > capacity) entries_.pop_back();
    return packed;
  }

 private:
  struct Entry {
    const T* address;
    std::int64_t channels, outputs;
    int tile;
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

int winograd_output_tile() { return output_tile_setting().load(std::memory_order_relaxed); }

namespace {

// The transforms run on the compiler's vectors, the products on the microkernel in use;
// the layout fits both (winograd_body.hpp).
template <class Algorithm, class T>
void correlate_by(const Geometry& g, const T* input, const T* weight, const T* bias, T* out, WeightLifetime lifetime,
                  const InputFusion<T>& input_fusion, const T* image_bias) {
  using Vector = xsimd::batch<T>;
  const auto& kernel = gemm_detail::active_microkernel<T>();
  if (lifetime == WeightLifetime::ThisCall)
    return winograd::correlate<Vector, Algorithm>(kernel, input, g.batch, g.in_channels, g.height, g.width, g.padding,
                                                  g.out_channels, weight, bias, out, input_fusion, image_bias);
  const winograd::WinogradLayout<Vector, Algorithm> layout(kernel, g.in_channels, g.height, g.width, g.padding,
                                                           g.out_channels);
  const auto packed = transformed_weight_cache<T>().packed(layout, g.in_channels, g.out_channels, weight);
  winograd::correlate_packed<Vector, Algorithm>(kernel, input, g.batch, g.in_channels, g.height, g.width, g.padding,
                                                g.out_channels, packed->data, bias, out, input_fusion, image_bias);
}

}  // namespace

// body(algorithm) with the algorithm of the tile in use.
template <class Body>
void with_selected_algorithm(Body body) {
  if (winograd_output_tile() == 4) return body(winograd::F4x4{});
  body(winograd::F2x2{});
}

template <class T>
void correlate_winograd(const Geometry& g, const T* input, const T* weight, const T* bias, T* out,
                        WeightLifetime lifetime, const InputFusion<T>& input_fusion,
                        const T* image_bias) {
  with_selected_algorithm([&](auto algorithm) {
    correlate_by<decltype(algorithm)>(g, input, weight, bias, out, lifetime, input_fusion, image_bias);
  });
}

template <class T>
void weight_gradient_winograd(const Geometry& g, const T* input, const T* output_gradient, T* weight_gradient) {
  with_selected_algorithm([&](auto algorithm) {
    winograd::weight_gradient<xsimd::batch<T>, decltype(algorithm)>(
        gemm_detail::active_microkernel<T>(), input, g.batch, g.in_channels, g.height, g.width, g.padding,
        g.out_channels, output_gradient, weight_gradient);
  });
}

#define DDPM_INSTANTIATE_WINOGRAD(T)                                                                                 \
  template void correlate_winograd<T>(const Geometry&, const T*, const T*, const T*, T*, WeightLifetime,       \
                                      const InputFusion<T>&, const T*);                      \
  template void weight_gradient_winograd<T>(const Geometry&, const T*, const T*, T*);
DDPM_INSTANTIATE_WINOGRAD(float)
DDPM_INSTANTIATE_WINOGRAD(double)
#undef DDPM_INSTANTIATE_WINOGRAD

}  // namespace ddpm::convolution_detail

namespace ddpm {

void select_winograd_tile(int tile) {
  convolution_detail::output_tile_setting().store(convolution_detail::checked_tile(tile, "select_winograd_tile"));
}
int selected_winograd_tile() { return convolution_detail::winograd_output_tile(); }

}  // namespace ddpm
