// `ddpm info FILE`: what a checkpoint (or the feature network's weights) holds.
#include <algorithm>
#include <cstdio>

#include "nn/safetensors.hpp"
#include "tools/checkpoint.hpp"
#include "tools/classifier_weights.hpp"
#include "tools/commands.hpp"

namespace ddpm::tools {
namespace {

void print_metadata(const std::map<std::string, std::string>& metadata) {
  std::size_t width = 0;
  for (const auto& [key, value] : metadata)
    if (key != "config") width = std::max(width, key.size());
  std::printf("metadata\n");
  for (const auto& [key, value] : metadata)
    if (key != "config") std::printf("  %-*s %s\n", static_cast<int>(width), key.c_str(), value.c_str());
}

// The weights `ddpm classifier train` writes: their recorded figures and the fingerprint
// every FID names, recomputed from the tensors.
int run_classifier_info(const std::string& path, const SafetensorsContents& contents) {
  const auto classifier = load_classifier(contents, path);
  std::printf("feature network  %s\nfingerprint      %s\nparameters       %lld in %zu tensors\n", path.c_str(),
              nn::weights_fingerprint(*classifier).c_str(), static_cast<long long>(classifier->parameter_count()),
              contents.tensors.size());
  print_metadata(contents.metadata);
  return 0;
}

}  // namespace

int run_info(const std::string& path) {
  const SafetensorsContents contents = read_safetensors(path);
  const auto format = contents.metadata.find("format");
  if (format != contents.metadata.end() && format->second == "ddpm-feature-classifier") return run_classifier_info(path, contents);
  // Reads what the file holds without building the model: a header may declare a model far
  // larger than its tensors (and than this machine's memory).
  const Checkpoint checkpoint = Checkpoint::from_contents(contents, path);  // the file is read once
  const nn::UNetConfig config = checkpoint.config();
  auto weights = checkpoint.model_tensors();
  const bool ema_only = weights.empty() && checkpoint.has_ema();  // an exported model
  if (ema_only) weights = checkpoint.ema_tensors();
  std::int64_t parameters = 0;
  for (const auto& [name, tensor] : weights) parameters += tensor.numel();
  std::printf("checkpoint  %s\nconfig      %s\nstep        %lld\nparameters  %lld in %zu tensors%s\n", path.c_str(),
              config.to_json().c_str(), static_cast<long long>(checkpoint.step()), static_cast<long long>(parameters),
              weights.size(), ema_only ? " (EMA weights only)" : "");
  print_metadata(checkpoint.metadata);
  std::int64_t model_tensors = 0, ema = 0, optimizer = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (name.rfind("ema.", 0) == 0) ++ema;
    else if (name.rfind("optim.", 0) == 0) ++optimizer;
    else ++model_tensors;
  }
  std::printf("tensors     %lld model, %lld EMA, %lld optimizer\n", static_cast<long long>(model_tensors),
              static_cast<long long>(ema), static_cast<long long>(optimizer));
  for (const auto& [name, tensor] : weights)
    std::printf("  %-40s %s %s\n", name.c_str(), std::string(dtype_name(tensor.dtype())).c_str(), shape_string(tensor.shape()).c_str());
  return 0;
}

}  // namespace ddpm::tools
