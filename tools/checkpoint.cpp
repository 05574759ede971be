#include "tools/checkpoint.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ddpm::tools {
namespace {

bool is_optimizer_or_ema(const std::string& name) { return name.rfind("ema.", 0) == 0 || name.rfind("optim.", 0) == 0; }

void require_finite(const std::string& path, const std::string& name, const Tensor& tensor) {
  const auto finite = [](const auto* values, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i)
      if (!std::isfinite(values[i])) return false;
    return true;
  };
  const Tensor values = tensor.contiguous();
  const bool ok = values.dtype() == DType::Float32   ? finite(values.data<float>(), values.numel())
                  : values.dtype() == DType::Float64 ? finite(values.data<double>(), values.numel())
                                                     : true;
  if (!ok) throw std::runtime_error(path + ": tensor '" + name + "' holds a non-finite value (NaN or inf)");
}

}  // namespace

std::int64_t parse_integer(const std::string& field, const std::string& text, std::int64_t low, std::int64_t high) {
  errno = 0;
  char* end = nullptr;
  const long long value = text.empty() ? 0 : std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < low || value > high)
    throw std::runtime_error(field + ": '" + text + "' is not an integer in [" + std::to_string(low) + ", " +
                             std::to_string(high) + "]");
  return value;
}

std::uint64_t parse_unsigned(const std::string& field, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const bool digits_only = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  const unsigned long long value = digits_only ? std::strtoull(text.c_str(), &end, 10) : 0;
  if (!digits_only || *end != '\0' || errno == ERANGE)
    throw std::runtime_error(field + ": '" + text + "' is not an integer in [0, 18446744073709551615]");
  return value;
}

double parse_real(const std::string& field, const std::string& text, double low, double high) {
  char* end = nullptr;
  const double value = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value) || value < low || value > high) {
    std::ostringstream range;
    range << "[" << low << ", " << high << "]";
    throw std::runtime_error(field + ": '" + text + "' is not a finite number in " + range.str());
  }
  return value;
}

Checkpoint Checkpoint::read(const std::string& path) { return from_contents(read_safetensors(path), path); }

Checkpoint Checkpoint::from_contents(SafetensorsContents contents, const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.path = path;
  for (auto& [name, tensor] : contents.tensors) checkpoint.tensors[name] = tensor;
  checkpoint.metadata = contents.metadata;
  if (!checkpoint.metadata.count("config"))
    throw std::runtime_error(path + ": not a ddpm checkpoint (no 'config' in __metadata__)");
  // Both throw now, naming the file, rather than midway through a command.
  checkpoint.config_ = checkpoint.parse_config();
  checkpoint.run_ = checkpoint.parse_run();
  const nn::UNetConfig& config = checkpoint.config_;
  // A header may declare a model far larger than the tensors it carries (and than memory):
  // refuse before any command builds it. Fewer declared than held is left to the strict
  // load, which names each tensor.
  std::int64_t held = 0;
  for (const auto& [name, tensor] : checkpoint.tensors)
    if (!is_optimizer_or_ema(name)) held += tensor.numel();
  const std::int64_t declared = config.parameter_count();
  if (declared > held)
    throw std::runtime_error(path + ": its config declares a model of " + std::to_string(declared) +
                             " parameters, but the file holds only " + std::to_string(held));
  return checkpoint;
}

std::string Checkpoint::meta(const std::string& key) const {
  auto found = metadata.find(key);
  if (found == metadata.end()) throw std::runtime_error(path + ": checkpoint metadata has no '" + key + "'");
  return found->second;
}

nn::UNetConfig Checkpoint::parse_config() const {
  try {
    return nn::UNetConfig::from_json(meta("config"));
  } catch (const TensorError& error) {
    throw std::runtime_error(path + ": __metadata__ 'config': " + error.what());
  }
}

// The same ranges as the options of `ddpm train` (tools/main.cpp).
RecordedRun Checkpoint::parse_run() const {
  RecordedRun run;
  const auto field = [&](const std::string& key) { return path + ": __metadata__ '" + key + "'"; };
  const auto integer = [&](const std::string& key, std::int64_t low, std::int64_t high) {
    return parse_integer(field(key), meta(key), low, high);
  };
  const auto real = [&](const std::string& key, double low, double high, double missing) {
    return metadata.count(key) ? parse_real(field(key), meta(key), low, high) : missing;
  };
  const auto member = [&](const std::string& key, std::initializer_list<const char*> names, const char* missing) {
    const std::string value = metadata.count(key) ? meta(key) : missing;
    for (const char* name : names)
      if (value == name) return value;
    throw std::runtime_error(field(key) + ": unknown value '" + value + "'");
  };
  constexpr std::int64_t most_steps = std::int64_t{1} << 40;
  run.step = metadata.count("step") ? integer("step", 0, most_steps) : 0;
  run.timesteps = integer("timesteps", 2, 100000);
  run.batch = integer("batch", 1, 65536);
  run.micro_batches = metadata.count("micro_batches") ? integer("micro_batches", 1, run.batch) : 1;
  if (run.batch % run.micro_batches != 0)
    throw std::runtime_error(field("micro_batches") + ": " + std::to_string(run.micro_batches) +
                             " does not divide the batch of " + std::to_string(run.batch));
  run.seed = parse_unsigned(field("seed"), meta("seed"));
  run.learning_rate = parse_real(field("lr"), meta("lr"), 0.0, 1.0);
  run.schedule = member("schedule", {"linear", "cosine", "quadratic", "sigmoid"}, "");
  run.loss = member("loss", {"simple", "vlb", "hybrid"}, "simple");
  run.lr_schedule = member("lr_schedule", {"constant", "linear-warmup", "cosine"}, "constant");
  run.warmup = metadata.count("warmup") ? integer("warmup", 0, most_steps) : 0;
  run.clip = real("clip", 0.0, 1e6, 1.0);
  run.ema_decay = real("ema.decay", 0.0, 1.0, 0.9999);
  run.label_dropout = real("label_dropout", 0.0, 1.0, 0.1);
  run.optimizer_steps = metadata.count("optim.step") ? integer("optim.step", 0, most_steps) : 0;
  run.ema_updates = metadata.count("ema.n") ? integer("ema.n", 0, most_steps) : 0;
  run.data = metadata.count("data") ? meta("data") : "";
  return run;
}

std::map<std::string, Tensor> Checkpoint::model_tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : tensors)
    if (!is_optimizer_or_ema(name)) {
      require_finite(path, name, tensor);
      out[name] = tensor;
    }
  return out;
}

bool Checkpoint::has_ema() const {
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("ema.", 0) == 0) return true;
  return false;
}

std::map<std::string, Tensor> Checkpoint::ema_tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("ema.", 0) == 0) {
      require_finite(path, name, tensor);
      out[name.substr(4)] = tensor;
    }
  return out;
}

void Checkpoint::load_into(nn::UNet& model, bool ema) const {
  try {
    model.load_state_dict(ema ? ema_tensors() : model_tensors(), /*strict=*/true);
  } catch (const TensorError& error) {
    throw std::runtime_error(path + (ema ? " (EMA weights)" : "") + ": " + error.what());
  }
}

void write_checkpoint(const std::string& path, const nn::UNet& model, const nn::Adam& optimizer,
                      const nn::ExponentialMovingAverage& ema, std::map<std::string, std::string> metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, parameter] : model.named_parameters()) tensors.emplace_back(name, parameter.value());
  for (auto& entry : ema.state_tensors("ema.")) tensors.push_back(entry);
  for (auto& entry : optimizer.state_tensors("optim.")) tensors.push_back(entry);
  for (const auto& [name, tensor] : tensors)
    require_finite(path + " (not written; the previous checkpoint is kept)", name, tensor);
  metadata["format"] = "ddpm-unet";
  metadata["config"] = model.config().to_json();
  metadata["ema.n"] = std::to_string(ema.updates());
  char decay[32];
  std::snprintf(decay, sizeof decay, "%.17g", ema.decay);
  metadata["ema.decay"] = decay;
  metadata["optim"] = "adam";
  metadata["optim.step"] = std::to_string(optimizer.step_count());
  write_safetensors(path, tensors, metadata);
}

diffusion::Variance model_variance(const std::string& choice, const nn::UNetConfig& config) {
  const auto variance = diffusion::parse_variance(choice == "auto" ? (config.learn_sigma ? "learned" : "large") : choice);
  if (variance == diffusion::Variance::Learned && !config.learn_sigma)
    throw std::runtime_error("--variance learned needs a model trained with a learned variance");
  return variance;
}

}  // namespace ddpm::tools
