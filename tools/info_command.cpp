// `ddpm info FILE`: what a checkpoint holds.
#include <cstdio>

#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"

namespace ddpm::tools {

int run_info(const std::string& path) {
  // Reads what the file holds without building the model: a header may declare a model far
  // larger than its tensors (and than this machine's memory).
  const Checkpoint checkpoint = Checkpoint::read(path);
  const nn::UNetConfig config = checkpoint.config();
  const auto weights = checkpoint.model_tensors();
  std::int64_t parameters = 0;
  for (const auto& [name, tensor] : weights) parameters += tensor.numel();
  std::printf("checkpoint  %s\nconfig      %s\nstep        %lld\nparameters  %lld in %zu tensors\n", path.c_str(),
              config.to_json().c_str(), static_cast<long long>(checkpoint.step()), static_cast<long long>(parameters),
              weights.size());
  std::printf("metadata\n");
  for (const auto& [key, value] : checkpoint.metadata)
    if (key != "config") std::printf("  %-12s %s\n", key.c_str(), value.c_str());
  std::int64_t model_tensors = 0, ema = 0, optimizer = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (name.rfind("ema.", 0) == 0) ++ema;
    else if (name.rfind("optim.", 0) == 0) ++optimizer;
    else ++model_tensors;
  }
  std::printf("tensors     %lld model, %lld EMA, %lld optimizer\n", static_cast<long long>(model_tensors),
              static_cast<long long>(ema), static_cast<long long>(optimizer));
  for (const auto& [name, tensor] : checkpoint.tensors)
    if (name.rfind("ema.", 0) != 0 && name.rfind("optim.", 0) != 0)
      std::printf("  %-40s %s %s\n", name.c_str(), std::string(dtype_name(tensor.dtype())).c_str(), shape_string(tensor.shape()).c_str());
  return 0;
}

}  // namespace ddpm::tools
