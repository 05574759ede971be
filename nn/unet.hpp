#pragma once
// The flagship DDPM U-Net, exactly as docs/unet.md describes it: names, layouts, order of
// operations and initialisation, so that its state dict loads into our PyTorch module
// (interop/pytorch/ddpm_unet.py) and back.
#include <string>
#include <vector>

#include "nn/layers.hpp"

namespace ddpm::nn {

struct UNetConfig {
  std::int64_t in_channels = 1;
  std::int64_t image_size = 28;
  std::int64_t ch = 32;
  std::vector<std::int64_t> ch_mult = {1, 2, 2};
  std::int64_t num_res_blocks = 2;
  std::vector<std::int64_t> attn_resolutions = {7};
  double dropout = 0.1;
  std::int64_t num_classes = 0;
  bool learn_sigma = false;

  std::int64_t out_channels() const { return in_channels * (learn_sigma ? 2 : 1); }
  // The same JSON as interop/pytorch/ddpm_unet.py's UNetConfig.to_json() (sorted keys), for checkpoints.
  std::string to_json() const;
  static UNetConfig from_json(const std::string& text);
  void validate() const;  // throws naming the field that is wrong
  // What UNet(config) would allocate, in parameters, computed without allocating.
  std::int64_t parameter_count() const;
};

class ResBlock : public Module {
 public:
  ResBlock(std::int64_t in_channels, std::int64_t out_channels, std::int64_t temb_channels, double dropout,
           Generator& generator);
  // x [B, C_in, H, W], silu_temb = SiLU(temb) [B, 4ch] -> [B, C_out, H, W]
  Variable forward(const Variable& x, const Variable& silu_temb, Generator& dropout_generator) const;

  std::shared_ptr<GroupNorm> norm1;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<Linear> temb_proj;
  std::shared_ptr<GroupNorm> norm2;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<Conv2d> skip;  // null when C_in == C_out
  double dropout_probability;
};

class AttnBlock : public Module {
 public:
  AttnBlock(std::int64_t channels, Generator& generator);
  Variable forward(const Variable& x) const;  // [B, C, H, W] -> same

  std::shared_ptr<GroupNorm> norm;
  std::shared_ptr<Linear> q, k, v, proj;
};

struct DownLevel : Module {
  std::shared_ptr<ModuleList<ResBlock>> block = std::make_shared<ModuleList<ResBlock>>();
  std::shared_ptr<ModuleList<AttnBlock>> attn = std::make_shared<ModuleList<AttnBlock>>();
  std::shared_ptr<Conv2d> downsample;  // null at the last level
  void finish();                        // registers the children in PyTorch's order
};

struct UpLevel : Module {
  std::shared_ptr<ModuleList<ResBlock>> block = std::make_shared<ModuleList<ResBlock>>();
  std::shared_ptr<ModuleList<AttnBlock>> attn = std::make_shared<ModuleList<AttnBlock>>();
  std::shared_ptr<Conv2d> upsample;  // null at level 0
  void finish();
};

struct Mid : Module {
  std::shared_ptr<ResBlock> block1;
  std::shared_ptr<AttnBlock> attn;
  std::shared_ptr<ResBlock> block2;
  void finish();
};

struct TimeEmbed : Module {
  std::shared_ptr<Linear> fc1, fc2;
  void finish();
};

class UNet : public Module {
 public:
  // Parameters drawn from `generator` as the spec's initialisation says.
  UNet(const UNetConfig& config, Generator& generator);

  // x [B, C, S, S] in [-1, 1], timesteps [B] int64, labels [B] int64 or undefined (the
  // null label when the model is class-conditional) -> [B, out_channels, S, S].
  // Dropout draws from `dropout_generator` in training mode.
  Variable forward(const Variable& x, const Tensor& timesteps, const Tensor& labels, Generator& dropout_generator) const;

  const UNetConfig& config() const { return config_; }

 private:
  UNetConfig config_;
  std::shared_ptr<TimeEmbed> time_embed_;
  std::shared_ptr<Embedding> label_embed_;
  std::shared_ptr<Conv2d> conv_in_;
  std::shared_ptr<ModuleList<DownLevel>> down_;
  std::shared_ptr<Mid> mid_;
  std::shared_ptr<ModuleList<UpLevel>> up_;
  std::shared_ptr<GroupNorm> norm_out_;
  std::shared_ptr<Conv2d> conv_out_;
};

}  // namespace ddpm::nn
