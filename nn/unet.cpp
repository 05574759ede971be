#include "nn/unet.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "tensor/factory.hpp"

namespace ddpm::nn {
namespace {

void zero_(Module& module) {
  for (auto& [name, parameter] : module.named_parameters()) {
    Variable target = parameter;
    target.value().zero_();
  }
}

bool has_attention(const UNetConfig& config, std::int64_t resolution) {
  return std::find(config.attn_resolutions.begin(), config.attn_resolutions.end(), resolution) !=
         config.attn_resolutions.end();
}

}  // namespace

std::string UNetConfig::to_json() const {
  nlohmann::json json = {{"attn_resolutions", attn_resolutions}, {"ch", ch},           {"ch_mult", ch_mult},
                         {"dropout", dropout},                   {"image_size", image_size}, {"in_channels", in_channels},
                         {"learn_sigma", learn_sigma},           {"num_classes", num_classes},
                         {"num_res_blocks", num_res_blocks}};
  return json.dump();
}

UNetConfig UNetConfig::from_json(const std::string& text) {
  UNetConfig config;
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    config.attn_resolutions = json.at("attn_resolutions").get<std::vector<std::int64_t>>();
    config.ch = json.at("ch").get<std::int64_t>();
    config.ch_mult = json.at("ch_mult").get<std::vector<std::int64_t>>();
    config.dropout = json.at("dropout").get<double>();
    config.image_size = json.at("image_size").get<std::int64_t>();
    config.in_channels = json.at("in_channels").get<std::int64_t>();
    config.learn_sigma = json.at("learn_sigma").get<bool>();
    config.num_classes = json.at("num_classes").get<std::int64_t>();
    config.num_res_blocks = json.at("num_res_blocks").get<std::int64_t>();
  } catch (const nlohmann::json::exception& error) {
    throw TensorError(std::string("UNetConfig: cannot read configuration JSON: ") + error.what());
  }
  config.validate();
  return config;
}

void UNetConfig::validate() const {
  // Upper bounds far past any model this engine trains, which keep every size computed
  // from a configuration (parameter_count) within 64 bits whatever a file declares.
  check(in_channels >= 1 && in_channels <= 64, "UNetConfig", "in_channels must be in [1, 64], got ", in_channels);
  check(image_size >= 1 && image_size <= 4096, "UNetConfig", "image_size must be in [1, 4096], got ", image_size);
  check(ch >= 8 && ch % 8 == 0 && ch <= 4096, "UNetConfig",
        "ch must be a multiple of 8 (GroupNorm has 8 groups) in [8, 4096], got ", ch);
  check(!ch_mult.empty() && ch_mult.size() <= 12, "UNetConfig", "ch_mult must have 1 to 12 entries, got ", ch_mult.size());
  for (std::int64_t m : ch_mult) check(m >= 1 && m <= 64, "UNetConfig", "ch_mult entries must be in [1, 64], got ", m);
  check(num_res_blocks >= 1 && num_res_blocks <= 64, "UNetConfig", "num_res_blocks must be in [1, 64], got ",
        num_res_blocks);
  check(num_classes <= (std::int64_t{1} << 24), "UNetConfig", "num_classes must be at most 2^24, got ", num_classes);
  check(dropout >= 0 && dropout < 1, "UNetConfig", "dropout must be in [0, 1), got ", dropout);
  check(num_classes >= 0, "UNetConfig", "num_classes must be >= 0, got ", num_classes);
  std::int64_t size = image_size;
  std::vector<std::int64_t> resolutions = {size};
  for (std::size_t level = 0; level + 1 < ch_mult.size(); ++level) {
    check(size % 2 == 0, "UNetConfig", "image_size ", image_size, " cannot be halved ", ch_mult.size() - 1,
          " times (", size, " is odd at level ", level, ")");
    size /= 2;
    resolutions.push_back(size);
  }
  // An attention resolution the model never reaches would silently add no attention.
  for (std::int64_t resolution : attn_resolutions)
    check(std::find(resolutions.begin(), resolutions.end(), resolution) != resolutions.end(), "UNetConfig",
          "attention resolution ", resolution, " is not one of the model's resolutions (", shape_string(resolutions),
          ")");
}

ResBlock::ResBlock(std::int64_t in_channels, std::int64_t out_channels, std::int64_t temb_channels, double dropout,
                   Generator& generator)
    : dropout_probability(dropout) {
  norm1 = register_module("norm1", std::make_shared<GroupNorm>(8, in_channels));
  conv1 = register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, 1, 1, generator));
  temb_proj = register_module("temb_proj", std::make_shared<Linear>(temb_channels, out_channels, generator));
  norm2 = register_module("norm2", std::make_shared<GroupNorm>(8, out_channels));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, generator));
  zero_(*conv2);
  if (in_channels != out_channels)
    skip = register_module("skip", std::make_shared<Conv2d>(in_channels, out_channels, 1, 1, 0, generator));
}

Variable ResBlock::forward(const Variable& x, const Variable& silu_temb, Generator& dropout_generator) const {
  // The time embedding is added by conv1 as it writes its output: the same values as a
  // separate add, without reading the output again.
  const Variable projected = temb_proj->forward(silu_temb);  // [B, C_out]
  Variable h = normalize_activate_convolve(*norm1, *conv1, x, 0.0, false, dropout_generator, projected);
  h = normalize_activate_convolve(*norm2, *conv2, h, dropout_probability, training(), dropout_generator);
  return add(skip ? skip->forward(x) : x, h);
}

AttnBlock::AttnBlock(std::int64_t channels, Generator& generator) {
  norm = register_module("norm", std::make_shared<GroupNorm>(8, channels));
  q = register_module("q", std::make_shared<Linear>(channels, channels, generator));
  k = register_module("k", std::make_shared<Linear>(channels, channels, generator));
  v = register_module("v", std::make_shared<Linear>(channels, channels, generator));
  proj = register_module("proj", std::make_shared<Linear>(channels, channels, generator));
  zero_(*proj);
}

Variable AttnBlock::forward(const Variable& x) const {
  const std::int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  // [B, C, H, W] -> [B, HW, C]: the channel vector of every pixel is a row, copied once into
  // that order rather than by each of the three projections.
  const Variable n = contiguous(transpose(reshape(norm->forward(x), {batch, channels, height * width}), 1, 2));
  const Variable h = attention(q->forward(n), k->forward(n), v->forward(n), 1.0 / std::sqrt(static_cast<double>(channels)));
  const Variable projected = proj->forward(h);  // [B, HW, C]
  return add(x, reshape(transpose(projected, 1, 2), {batch, channels, height, width}));
}

void DownLevel::finish() {
  register_module("block", block);
  register_module("attn", attn);
  if (downsample) register_module("downsample", downsample);
}

void Mid::finish() {
  register_module("block1", block1);
  register_module("attn", attn);
  register_module("block2", block2);
}

void TimeEmbed::finish() {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

void UpLevel::finish() {
  register_module("block", block);
  register_module("attn", attn);
  if (upsample) register_module("upsample", upsample);
}

// The parameters the constructor below creates, counted without allocating them, layer by
// layer in the same order (a test compares the two for several configurations). Commands
// check a checkpoint's tensors against it before building a model its header declares.
std::int64_t UNetConfig::parameter_count() const {
  validate();
  const auto conv = [](std::int64_t in, std::int64_t out, std::int64_t kernel) { return out * in * kernel * kernel + out; };
  const auto linear = [](std::int64_t in, std::int64_t out) { return out * in + out; };
  const auto norm = [](std::int64_t channels) { return 2 * channels; };
  const std::int64_t temb = 4 * ch;
  const auto res_block = [&](std::int64_t in, std::int64_t out) {
    return norm(in) + conv(in, out, 3) + linear(temb, out) + norm(out) + conv(out, out, 3) + (in != out ? conv(in, out, 1) : 0);
  };
  const auto attention = [&](std::int64_t channels) { return norm(channels) + 4 * linear(channels, channels); };
  const auto attends = [&](std::int64_t resolution) {
    return std::find(attn_resolutions.begin(), attn_resolutions.end(), resolution) != attn_resolutions.end();
  };
  const std::int64_t levels = static_cast<std::int64_t>(ch_mult.size());
  std::int64_t total = linear(ch, temb) + linear(temb, temb) + (num_classes > 0 ? (num_classes + 1) * temb : 0) +
                       conv(in_channels, ch, 3);
  std::vector<std::int64_t> skip_channels = {ch};
  std::int64_t current = ch, resolution = image_size;
  for (std::int64_t level = 0; level < levels; ++level) {
    const std::int64_t out = ch * ch_mult[static_cast<std::size_t>(level)];
    for (std::int64_t j = 0; j < num_res_blocks; ++j) {
      total += res_block(current, out) + (attends(resolution) ? attention(out) : 0);
      current = out;
      skip_channels.push_back(current);
    }
    if (level != levels - 1) {
      total += conv(current, current, 3);
      skip_channels.push_back(current);
      resolution /= 2;
    }
  }
  total += 2 * res_block(current, current) + attention(current);
  for (std::int64_t level = levels - 1; level >= 0; --level) {
    const std::int64_t out = ch * ch_mult[static_cast<std::size_t>(level)];
    for (std::int64_t j = 0; j <= num_res_blocks; ++j) {
      total += res_block(current + skip_channels.back(), out) + (attends(resolution) ? attention(out) : 0);
      skip_channels.pop_back();
      current = out;
    }
    if (level != 0) {
      total += conv(current, current, 3);
      resolution *= 2;
    }
  }
  return total + norm(current) + conv(current, out_channels(), 3);
}

UNet::UNet(const UNetConfig& config, Generator& generator) : config_(config) {
  config.validate();
  const std::int64_t ch = config.ch, levels = static_cast<std::int64_t>(config.ch_mult.size());
  const std::int64_t temb_channels = 4 * ch;
  time_embed_ = register_module("time_embed", std::make_shared<TimeEmbed>());
  time_embed_->fc1 = std::make_shared<Linear>(ch, temb_channels, generator);
  time_embed_->fc2 = std::make_shared<Linear>(temb_channels, temb_channels, generator);
  time_embed_->finish();
  if (config.num_classes > 0)
    label_embed_ = register_module("label_embed", std::make_shared<Embedding>(config.num_classes + 1, temb_channels, generator));
  conv_in_ = register_module("conv_in", std::make_shared<Conv2d>(config.in_channels, ch, 3, 1, 1, generator));

  // Down path; skip_channels mirrors the channel counts pushed on the skip stack.
  std::vector<std::int64_t> skip_channels = {ch};
  std::int64_t current = ch, resolution = config.image_size;
  down_ = register_module("down", std::make_shared<ModuleList<DownLevel>>());
  for (std::int64_t level = 0; level < levels; ++level) {
    auto down = std::make_shared<DownLevel>();
    const std::int64_t out_channels = ch * config.ch_mult[level];
    for (std::int64_t j = 0; j < config.num_res_blocks; ++j) {
      down->block->push_back(std::make_shared<ResBlock>(current, out_channels, temb_channels, config.dropout, generator));
      current = out_channels;
      if (has_attention(config, resolution)) down->attn->push_back(std::make_shared<AttnBlock>(current, generator));
      skip_channels.push_back(current);
    }
    if (level != levels - 1) {
      down->downsample = std::make_shared<Conv2d>(current, current, 3, 2, 1, generator);
      skip_channels.push_back(current);
      resolution /= 2;
    }
    down->finish();
    down_->push_back(down);
  }

  mid_ = register_module("mid", std::make_shared<Mid>());
  mid_->block1 = std::make_shared<ResBlock>(current, current, temb_channels, config.dropout, generator);
  mid_->attn = std::make_shared<AttnBlock>(current, generator);
  mid_->block2 = std::make_shared<ResBlock>(current, current, temb_channels, config.dropout, generator);
  mid_->finish();

  // Up path: built from the lowest resolution upwards, popping the skip stack as forward
  // does, but registered by level index (up.0 is full resolution), as PyTorch names them.
  std::vector<std::shared_ptr<UpLevel>> up_levels(static_cast<std::size_t>(levels));
  for (std::int64_t level = levels - 1; level >= 0; --level) {
    auto up = std::make_shared<UpLevel>();
    const std::int64_t out_channels = ch * config.ch_mult[level];
    for (std::int64_t j = 0; j <= config.num_res_blocks; ++j) {
      const std::int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      up->block->push_back(std::make_shared<ResBlock>(current + skip, out_channels, temb_channels, config.dropout, generator));
      current = out_channels;
      if (has_attention(config, resolution)) up->attn->push_back(std::make_shared<AttnBlock>(current, generator));
    }
    if (level != 0) {
      up->upsample = std::make_shared<Conv2d>(current, current, 3, 1, 1, generator);
      resolution *= 2;
    }
    up->finish();
    up_levels[static_cast<std::size_t>(level)] = up;
  }
  up_ = register_module("up", std::make_shared<ModuleList<UpLevel>>());
  for (auto& up : up_levels) up_->push_back(up);

  norm_out_ = register_module("norm_out", std::make_shared<GroupNorm>(8, current));
  conv_out_ = register_module("conv_out", std::make_shared<Conv2d>(current, config.out_channels(), 3, 1, 1, generator));
  zero_(*conv_out_);
}

Variable UNet::forward(const Variable& x, const Tensor& timesteps, const Tensor& labels, Generator& dropout_generator) const {
  const std::int64_t batch = x.size(0);
  check(x.rank() == 4 && x.size(1) == config_.in_channels && x.size(2) == config_.image_size &&
            x.size(3) == config_.image_size,
        "UNet", "input must be [B, ", config_.in_channels, ", ", config_.image_size, ", ", config_.image_size, "], got ",
        shape_string(x.shape()));
  check(timesteps.shape() == Shape{batch} && timesteps.dtype() == DType::Int64, "UNet",
        "timesteps must be int64 [", batch, "], got ", dtype_name(timesteps.dtype()), " ", shape_string(timesteps.shape()));
  Variable temb = time_embed_->fc2->forward(silu(time_embed_->fc1->forward(Variable(timestep_embedding(timesteps, config_.ch)))));
  if (label_embed_) {
    Tensor y = labels.defined() ? labels : full({batch}, static_cast<double>(config_.num_classes), DType::Int64);
    check(y.shape() == Shape{batch} && y.dtype() == DType::Int64, "UNet", "labels must be int64 [", batch, "]");
    temb = add(temb, label_embed_->forward(y));
  }
  const Variable silu_temb = silu(temb);

  std::vector<Variable> skips = {conv_in_->forward(x)};
  for (std::size_t level = 0; level < down_->size(); ++level) {
    const DownLevel& down = (*down_)[level];
    for (std::size_t j = 0; j < down.block->size(); ++j) {
      Variable h = (*down.block)[j].forward(skips.back(), silu_temb, dropout_generator);
      if (!down.attn->empty()) h = (*down.attn)[j].forward(h);
      skips.push_back(h);
    }
    if (down.downsample) skips.push_back(down.downsample->forward(skips.back()));
  }
  Variable h = mid_->block1->forward(skips.back(), silu_temb, dropout_generator);
  h = mid_->attn->forward(h);
  h = mid_->block2->forward(h, silu_temb, dropout_generator);
  for (std::size_t level = up_->size(); level-- > 0;) {
    const UpLevel& up = (*up_)[level];
    for (std::size_t j = 0; j < up.block->size(); ++j) {
      h = (*up.block)[j].forward(concat({h, skips.back()}, 1), silu_temb, dropout_generator);
      skips.pop_back();
      if (!up.attn->empty()) h = (*up.attn)[j].forward(h);
    }
    if (up.upsample) h = upsample_nearest2x_conv2d(h, up.upsample->weight, up.upsample->bias, up.upsample->options);
  }
  return normalize_activate_convolve(*norm_out_, *conv_out_, h, 0.0, false, dropout_generator);
}

}  // namespace ddpm::nn
