#include "tools/dataset.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "tensor/random.hpp"
#include "tools/idx.hpp"

namespace ddpm::tools {

constexpr const char* fashion_mnist_directory = "/usr/share/datasets/fashion-mnist";

Tensor Dataset::batch(const std::vector<std::int64_t>& indices) const {
  const std::int64_t per_image = channels * size * size;
  Tensor out = Tensor::empty({static_cast<std::int64_t>(indices.size()), channels, size, size});
  float* data = out.data<float>();
  for (std::size_t b = 0; b < indices.size(); ++b)
    for (std::int64_t i = 0; i < per_image; ++i)
      data[b * per_image + i] = static_cast<float>(pixels[indices[b] * per_image + i]) / 127.5f - 1.0f;
  return out;
}

Tensor Dataset::batch_labels(const std::vector<std::int64_t>& indices) const {
  if (labels.empty()) return Tensor();
  std::vector<std::int64_t> out;
  for (std::int64_t i : indices) out.push_back(labels[static_cast<std::size_t>(i)]);
  return Tensor::from_vector(out, {static_cast<std::int64_t>(out.size())});
}

namespace {
Dataset from_idx(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path);
  Dataset dataset;
  if (images.shape.size() == 3) {
    dataset.channels = 1;
  } else if (images.shape.size() == 4 && (images.shape[3] == 1 || images.shape[3] == 3)) {
    throw std::runtime_error(images_path + ": channels-last IDX images are not supported; expected [N, H, W]");
  } else {
    throw std::runtime_error(images_path + ": expected images of shape [N, H, W], got rank " + std::to_string(images.shape.size()));
  }
  if (images.shape[1] != images.shape[2])
    throw std::runtime_error(images_path + ": images must be square, got " + std::to_string(images.shape[1]) + "x" +
                             std::to_string(images.shape[2]));
  dataset.count = images.shape[0];
  dataset.size = images.shape[1];
  dataset.pixels = std::move(images.data);
  if (!labels_path.empty()) {
    IdxArray labels = read_idx(labels_path);
    if (labels.shape.size() != 1 || labels.shape[0] != dataset.count)
      throw std::runtime_error(labels_path + ": expected " + std::to_string(dataset.count) + " labels, got shape [" +
                               std::to_string(labels.shape[0]) + (labels.shape.size() > 1 ? ", ...]" : "]"));
    for (std::uint8_t label : labels.data) {
      dataset.labels.push_back(label);
      dataset.classes = std::max<std::int64_t>(dataset.classes, label + 1);
    }
  }
  return dataset;
}
}  // namespace

Dataset load_dataset(const std::string& spec, const std::string& split) {
  if (split != "train" && split != "test") throw std::runtime_error("--split must be train or test, got '" + split + "'");
  if (spec == "fashion-mnist") {
    const std::string prefix = std::string(fashion_mnist_directory) + "/" + (split == "train" ? "train" : "t10k");
    return from_idx(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz");
  }
  if (spec.rfind("idx:", 0) == 0) {
    const std::string rest = spec.substr(4);
    const auto comma = rest.find(',');
    return from_idx(rest.substr(0, comma), comma == std::string::npos ? "" : rest.substr(comma + 1));
  }
  throw std::runtime_error("--data: unknown data source '" + spec + "' (fashion-mnist, idx:IMAGES[,LABELS])");
}

std::vector<std::int64_t> batch_indices(std::int64_t count, std::uint64_t seed, std::int64_t step, std::int64_t batch) {
  // One permutation per epoch, cached: consecutive steps reuse it.
  thread_local std::map<std::pair<std::uint64_t, std::int64_t>, std::vector<std::int64_t>> cache;
  std::vector<std::int64_t> out;
  for (std::int64_t j = 0; j < batch; ++j) {
    const std::int64_t global = step * batch + j;
    const std::int64_t epoch = global / count, position = global % count;
    auto key = std::pair{seed, epoch};
    auto found = cache.find(key);
    if (found == cache.end()) {
      if (cache.size() > 2) cache.clear();
      std::vector<std::int64_t> order(static_cast<std::size_t>(count));
      std::iota(order.begin(), order.end(), 0);
      for (std::int64_t i = count - 1; i > 0; --i) {
        const auto k = static_cast<std::int64_t>(uniform_at(seed, static_cast<std::uint64_t>(epoch) * static_cast<std::uint64_t>(count), static_cast<std::uint64_t>(i)) * static_cast<double>(i + 1));
        std::swap(order[i], order[std::min(k, i)]);
      }
      found = cache.emplace(key, std::move(order)).first;
    }
    out.push_back(found->second[static_cast<std::size_t>(position)]);
  }
  return out;
}

}  // namespace ddpm::tools
