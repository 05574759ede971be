#pragma once
// The `ddpm` subcommands. Each returns the process exit status; errors are reported as
// exceptions whose message the caller prints as one line.
#include <set>
#include <string>
#include <vector>

#include "nn/unet.hpp"
#include "tools/run_settings.hpp"

namespace ddpm::tools {

struct TrainOptions {
  RunSettings run;  // what a checkpoint records, and a resumed run keeps
  nn::UNetConfig model;
  bool class_conditional = false;
  std::int64_t steps = 1000;
  std::int64_t check_ranks_every = 100;
  int threads = 0;
  std::string out = "runs/ddpm";
  std::int64_t checkpoint_every = 500;
  std::int64_t sample_every = 0;
  std::int64_t sample_count = 16;
  std::int64_t sample_steps = 50;
  std::int64_t fid_every = 0;      // > 0: FID of the EMA model every so many steps (tools/training_fid.hpp)
  std::int64_t fid_samples = 500;
  std::int64_t fid_steps = 50;
  std::int64_t log_every = 10;
  bool resume = false;
  bool overwrite = false;   // replace a run already in --out
  bool data_given = false;  // --data was on the command line (it then wins over the checkpoint's)
  bool quiet = false;
  std::set<std::string> given;  // the options on the command line, for --resume's conflict check
};
int run_train(const TrainOptions& options);

// `ddpm classifier train|test`: the feature network of FID (nn/feature_classifier.hpp).
struct ClassifierOptions {
  std::string data = "fashion-mnist";
  std::string weights = "models/fashion-mnist-classifier.safetensors";  // written by train, read by test
  std::int64_t epochs = 12;
  std::int64_t batch = 128;
  double lr = 2e-3;
  double weight_decay = 0.05;  // AdamW's decoupled decay
  std::uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
};
int run_classifier_train(const ClassifierOptions& options);
int run_classifier_test(const ClassifierOptions& options);

struct SampleOptions {
  std::string checkpoint;
  std::string out = "samples.png";
  std::int64_t n = 16;
  std::int64_t batch = 64;
  std::uint64_t seed = 0;
  std::string sampler = "ancestral";
  std::int64_t steps = 0;  // 0: all of the schedule's steps
  double eta = 0.0;
  std::string variance = "auto";
  bool ema = true;
  std::int64_t label = -1;
  double guidance = 0.0;
  std::string trajectory;
  std::string raw;
  int threads = 0;
  bool quiet = false;
  bool balanced_labels = false;  // a class-conditional model without --class: image i gets class i mod K
};
int run_sample(const SampleOptions& options);
// The images of `ddpm sample` [n, C, S, S] in [-1, 1], on every process (drawn in shares
// under mpirun); with `trajectory_rows`, x_t of the first images every tenth of the steps.
Tensor generate_images(const SampleOptions& options, std::vector<Tensor>* trajectory_rows = nullptr);

struct EvalOptions {
  std::string checkpoint;
  std::string data;  // empty: the checkpoint's training data source
  std::string split = "test";
  std::int64_t n_images = 256;  // 0: the whole split
  std::int64_t batch = 64;
  std::uint64_t seed = 0;
  std::string variance = "auto";
  bool ema = true;
  std::string json;
  int threads = 0;
  bool quiet = false;
  // --fid: sample quality (FID, KID, precision/recall, classes, memorisation) instead of bits/dim
  bool fid = false;
  std::string images;              // evaluate these images (.safetensors, IDX, PNG folder), not samples
  std::int64_t n_samples = 1000;   // samples drawn from the checkpoint
  std::string sampler = "ddim";
  std::int64_t steps = 50;         // 0: every step of the schedule
  double eta = 0.0;
  std::string classifier;          // empty: default_classifier_path()
  std::string features;            // also write the feature matrices (safetensors)
  bool memorisation = true;        // the pixel-space copy check (distances to every training image)
};
int run_eval(const EvalOptions& options);
int run_sample_quality(const EvalOptions& options);

int run_info(const std::string& checkpoint);

}  // namespace ddpm::tools
