#pragma once
// Training images in memory as bytes, scaled to [-1, 1] per batch (x / 127.5 - 1).
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm::tools {

struct Dataset {
  std::int64_t count = 0, channels = 1, size = 0;  // square images
  std::vector<std::uint8_t> pixels;               // [count, channels, size, size]
  std::vector<std::int64_t> labels;               // empty when unlabelled
  std::int64_t classes = 0;                       // 1 + the largest label

  // Images `indices` as a float32 [B, C, S, S] tensor in [-1, 1], and their labels.
  Tensor batch(const std::vector<std::int64_t>& indices) const;
  // Images first .. first + count - 1 (every image by default), as batch() scales them.
  Tensor range(std::int64_t first = 0, std::int64_t count = -1) const;
  Tensor batch_labels(const std::vector<std::int64_t>& indices) const;
};

// "fashion-mnist" (Debian's dataset-fashion-mnist, split "train" or "test"),
// "idx:IMAGES[,LABELS]" (any MNIST-format files, .gz or not), or "folder:PATH": square
// PNGs of one size, gray or RGB (gray ones join RGB data as RGB), unlabelled when they
// lie directly in PATH, labelled by class subfolder (sorted names) otherwise; a PATH with
// train/ and test/ subfolders holds both splits, any other PATH is the data of either.
Dataset load_dataset(const std::string& spec, const std::string& split = "train");

// Position `position` of the shuffled order of epoch `epoch`: a Fisher-Yates permutation
// drawn from the counter-based RNG, so any step's batch can be recomputed on resume.
std::vector<std::int64_t> batch_indices(std::int64_t count, std::uint64_t seed, std::int64_t step, std::int64_t batch);

}  // namespace ddpm::tools
