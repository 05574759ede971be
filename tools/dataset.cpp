#include "tools/dataset.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "tensor/error.hpp"
#include "tensor/random.hpp"
#include "tools/idx.hpp"
#include "tools/png_image.hpp"

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

Tensor Dataset::range(std::int64_t first, std::int64_t count) const {
  if (count < 0) count = this->count - first;
  check(first >= 0 && count >= 0 && first + count <= this->count, "Dataset::range", "images ", first, " .. ", first + count,
        " of ", this->count);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) indices[static_cast<std::size_t>(i)] = first + i;
  return batch(indices);
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
bool is_png(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  return extension == ".png";
}

// PNG files directly in `root` (unlabelled) or in its subfolders (one class per subfolder,
// numbered in sorted name order, as torchvision's ImageFolder), sorted by path.
Dataset from_folder(const std::string& folder, const std::string& split) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(folder, error)) throw std::runtime_error("folder:" + folder + ": not a directory");
  // A folder with train/ and test/ subfolders holds both splits; otherwise it is the data of either.
  fs::path root = folder;
  if (fs::is_directory(root / "train", error) && fs::is_directory(root / "test", error)) root /= split;
  std::vector<fs::path> direct_files, class_folders;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_regular_file() && is_png(entry.path())) direct_files.push_back(entry.path());
    else if (entry.is_directory()) class_folders.push_back(entry.path());
  }
  std::sort(class_folders.begin(), class_folders.end());
  std::vector<std::pair<fs::path, std::int64_t>> files;  // (path, label or -1)
  if (!direct_files.empty()) {
    for (const auto& path : direct_files) files.emplace_back(path, -1);
  } else {
    std::int64_t label = 0;
    for (const auto& class_folder : class_folders) {
      std::vector<fs::path> members;
      for (const auto& entry : fs::directory_iterator(class_folder))
        if (entry.is_regular_file() && is_png(entry.path())) members.push_back(entry.path());
      if (members.empty()) continue;
      for (const auto& path : members) files.emplace_back(path, label);
      ++label;
    }
  }
  if (files.empty()) throw std::runtime_error("folder:" + root.string() + ": no .png files in it or in its subfolders");
  std::sort(files.begin(), files.end());

  std::vector<Image> images;
  images.reserve(files.size());
  Dataset dataset;
  dataset.channels = 1;
  for (const auto& [path, label] : files) {
    images.push_back(read_png(path.string()));
    const Image& image = images.back();
    const Image& first = images.front();
    if (image.width != image.height)
      throw std::runtime_error(path.string() + ": images must be square, got " + std::to_string(image.width) + "x" +
                               std::to_string(image.height));
    if (image.width != first.width)
      throw std::runtime_error(path.string() + ": is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                               " but " + files.front().first.string() + " is " + std::to_string(first.width) + "x" +
                               std::to_string(first.height) + " (all images must have one size)");
    dataset.channels = std::max(dataset.channels, image.channels);  // gray joins RGB data as gray RGB
    if (label >= 0) {
      dataset.labels.push_back(label);
      dataset.classes = std::max(dataset.classes, label + 1);
    }
  }
  dataset.count = static_cast<std::int64_t>(images.size());
  dataset.size = images.front().width;
  const std::int64_t plane = dataset.size * dataset.size;
  dataset.pixels.resize(static_cast<std::size_t>(dataset.count * dataset.channels * plane));
  for (std::int64_t n = 0; n < dataset.count; ++n) {
    const Image& image = images[static_cast<std::size_t>(n)];
    for (std::int64_t c = 0; c < dataset.channels; ++c)
      for (std::int64_t i = 0; i < plane; ++i)  // interleaved HWC -> planar CHW
        dataset.pixels[static_cast<std::size_t>((n * dataset.channels + c) * plane + i)] =
            image.pixels[static_cast<std::size_t>(i * image.channels + std::min(c, image.channels - 1))];
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
  if (spec.rfind("folder:", 0) == 0) return from_folder(spec.substr(7), split);
  throw std::runtime_error("--data: unknown data source '" + spec + "' (fashion-mnist, idx:IMAGES[,LABELS], folder:PATH)");
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
