// libFuzzer target: a checkpoint's __metadata__ values, as a crafted file could hold them,
// through Checkpoint::from_contents (the config, every run field, the declared model size)
// and the run fields that --resume reads. Any value must give a clear error, never a
// crash, an out-of-bounds read or a huge allocation. The input is one value per line, in
// the order of `fields`; fields past the input's lines keep a valid value.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "tensor/factory.hpp"
#include "tools/checkpoint.hpp"

namespace {

const char* const fields[] = {"config", "step",      "timesteps", "batch", "seed",       "lr",         "schedule",
                              "loss",   "lr_schedule", "warmup",  "clip",  "ema.decay", "label_dropout", "optim.step",
                              "ema.n",  "data"};

ddpm::SafetensorsContents valid_contents() {
  ddpm::SafetensorsContents contents;
  ddpm::nn::UNetConfig config;
  config.ch = 8, config.ch_mult = {1}, config.num_res_blocks = 1, config.attn_resolutions = {}, config.image_size = 4;
  contents.metadata = {{"config", config.to_json()}, {"step", "3"},   {"timesteps", "10"},     {"batch", "2"},
                       {"seed", "1"},                {"lr", "0.001"}, {"schedule", "linear"}, {"loss", "simple"}};
  // The tensors of that config, zeros: a valid file until the fuzzer changes a value.
  ddpm::Generator generator(0);
  for (const auto& [name, parameter] : ddpm::nn::UNet(config, generator).named_parameters())
    contents.tensors.emplace_back(name, ddpm::zeros(parameter.shape()));
  return contents;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ddpm::SafetensorsContents valid = valid_contents();
  ddpm::SafetensorsContents contents = valid;
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  for (const char* field : fields) {
    if (start > input.size()) break;
    const std::size_t end = std::min(input.find('\n', start), input.size());
    contents.metadata[field] = input.substr(start, end - start);
    start = end + 1;
  }
  try {
    const auto checkpoint = ddpm::tools::Checkpoint::from_contents(contents, "fuzz.safetensors");
    const auto run = checkpoint.run();
    ddpm::Generator generator(0);
    ddpm::nn::UNet model(checkpoint.config(), generator);  // bounded: the declared size was checked
    checkpoint.load_into(model, false);
    (void)run;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
