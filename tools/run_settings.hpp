#pragma once
// The settings that make a training run what it is, as typed values, and their one
// conversion to and from a checkpoint's __metadata__: each field read back is range-checked
// by the rule of its command-line option, and an error names the field and the file.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ddpm/schedule.hpp"
#include "ddpm/trainer.hpp"
#include "ddpm/training_loss.hpp"
#include "nn/training.hpp"

namespace ddpm::tools {

struct RunSettings {
  std::string data = "fashion-mnist";
  diffusion::ScheduleKind schedule = diffusion::ScheduleKind::Linear;
  std::int64_t timesteps = 1000;
  diffusion::LossType loss = diffusion::LossType::Simple;
  diffusion::Prediction prediction = diffusion::Prediction::Epsilon;  // what the network predicts
  nn::LearningRateSchedule learning_rate_schedule = nn::LearningRateSchedule::Constant;
  double learning_rate = 2e-4;
  std::int64_t warmup = 0;
  std::int64_t batch = 64;
  std::int64_t micro_batches = 1;  // may change on resume: it changes only float rounding
  double ema_decay = 0.9999;
  double clip = 1.0;
  double label_dropout = 0.1;
  std::uint64_t seed = 0;

  // What the library's Trainer takes of these, for a run of `total_steps`.
  diffusion::TrainerSettings trainer_settings(std::int64_t total_steps) const;
};

using Metadata = std::map<std::string, std::string>;

// Every field under its metadata key, numbers written exactly (%.17g).
Metadata to_metadata(const RunSettings& settings);
// The fields of `metadata` (of the file `source`); a field checkpoints of older versions
// lack takes its default.
RunSettings run_settings_from_metadata(const Metadata& metadata, const std::string& source);

// Each setting's command-line option and metadata key, and whether a resumed run may
// change it (the others would silently make it another run).
struct RunSettingField {
  const char* option;
  const char* key;
  bool may_change_on_resume;
};
const std::vector<RunSettingField>& run_setting_fields();

// Parsing shared with the command line: the whole text must be a number in [low, high].
std::int64_t parse_integer(const std::string& field, const std::string& text, std::int64_t low, std::int64_t high);
std::uint64_t parse_unsigned(const std::string& field, const std::string& text);
double parse_real(const std::string& field, const std::string& text, double low, double high);

}  // namespace ddpm::tools
