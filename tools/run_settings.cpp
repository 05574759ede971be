#include "tools/run_settings.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace ddpm::tools {
namespace {
std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}
constexpr std::int64_t most_steps = std::int64_t{1} << 40;
}  // namespace

diffusion::TrainerSettings RunSettings::trainer_settings(std::int64_t total_steps) const {
  diffusion::TrainerSettings settings;
  settings.seed = seed;
  settings.loss.type = loss;
  settings.loss.prediction = prediction;
  settings.learning_rate_schedule = learning_rate_schedule;
  settings.learning_rate = learning_rate;
  settings.warmup_steps = warmup;
  settings.total_steps = total_steps;
  settings.clip = clip;
  settings.label_dropout = label_dropout;
  settings.micro_batches = micro_batches;
  return settings;
}

const std::vector<RunSettingField>& run_setting_fields() {
  static const std::vector<RunSettingField> fields = {
      {"--data", "data", true},          {"--schedule", "schedule", false},       {"--timesteps", "timesteps", false},
      {"--loss", "loss", false},         {"--predict", "predict", false},         {"--lr-schedule", "lr_schedule", false},
      {"--lr", "lr", false},
      {"--warmup", "warmup", false},     {"--batch", "batch", false},             {"--micro-batches", "micro_batches", true},
      {"--ema", "ema.decay", false},     {"--clip", "clip", false},               {"--label-dropout", "label_dropout", false},
      {"--seed", "seed", false}};
  return fields;
}

Metadata to_metadata(const RunSettings& settings) {
  return {{"data", settings.data},
          {"schedule", diffusion::schedule_kind_name(settings.schedule)},
          {"timesteps", std::to_string(settings.timesteps)},
          {"loss", diffusion::loss_type_name(settings.loss)},
          {"predict", diffusion::prediction_name(settings.prediction)},
          {"lr_schedule", nn::learning_rate_schedule_name(settings.learning_rate_schedule)},
          {"lr", exact(settings.learning_rate)},
          {"warmup", std::to_string(settings.warmup)},
          {"batch", std::to_string(settings.batch)},
          {"micro_batches", std::to_string(settings.micro_batches)},
          {"ema.decay", exact(settings.ema_decay)},
          {"clip", exact(settings.clip)},
          {"label_dropout", exact(settings.label_dropout)},
          {"seed", std::to_string(settings.seed)}};
}

// The same ranges as the options of `ddpm train` (tools/main.cpp).
RunSettings run_settings_from_metadata(const Metadata& metadata, const std::string& source) {
  const auto field = [&](const std::string& key) { return source + ": __metadata__ '" + key + "'"; };
  const auto text = [&](const std::string& key) {
    const auto found = metadata.find(key);
    if (found == metadata.end()) throw std::runtime_error(source + ": checkpoint metadata has no '" + key + "'");
    return found->second;
  };
  const auto integer = [&](const std::string& key, std::int64_t low, std::int64_t high, std::int64_t missing) {
    return metadata.count(key) ? parse_integer(field(key), text(key), low, high) : missing;
  };
  const auto real = [&](const std::string& key, double low, double high, double missing) {
    return metadata.count(key) ? parse_real(field(key), text(key), low, high) : missing;
  };
  const auto named = [&](const std::string& key, const auto& table, const char* missing) {
    const std::string value = metadata.count(key) ? text(key) : missing;
    for (const auto& [entry, name] : table)
      if (value == name) return entry;
    throw std::runtime_error(field(key) + ": unknown value '" + value + "'");
  };
  RunSettings settings;
  settings.data = metadata.count("data") ? text("data") : "";
  settings.schedule = named("schedule", diffusion::schedule_kind_names, "");
  settings.timesteps = parse_integer(field("timesteps"), text("timesteps"), 2, 100000);
  settings.loss = named("loss", diffusion::loss_type_names, "simple");
  settings.prediction = named("predict", diffusion::prediction_names, "eps");  // older checkpoints predict ε
  settings.learning_rate_schedule = named("lr_schedule", nn::learning_rate_schedule_names, "constant");
  settings.learning_rate = parse_real(field("lr"), text("lr"), 0.0, 1.0);
  settings.warmup = integer("warmup", 0, most_steps, 0);
  settings.batch = parse_integer(field("batch"), text("batch"), 1, 65536);
  settings.micro_batches = integer("micro_batches", 1, settings.batch, 1);
  if (settings.batch % settings.micro_batches != 0)
    throw std::runtime_error(field("micro_batches") + ": " + std::to_string(settings.micro_batches) +
                             " does not divide the batch of " + std::to_string(settings.batch));
  settings.ema_decay = real("ema.decay", 0.0, 1.0, 0.9999);
  settings.clip = real("clip", 0.0, 1e6, 1.0);
  settings.label_dropout = real("label_dropout", 0.0, 1.0, 0.1);
  settings.seed = parse_unsigned(field("seed"), text("seed"));
  return settings;
}

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

}  // namespace ddpm::tools
