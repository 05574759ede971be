// The `ddpm` command line: train, sample, eval, info.
#include <CLI/CLI.hpp>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <exception>

#include "tensor/system_info.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/processes.hpp"

namespace {

std::vector<std::int64_t> parse_list(const std::string& text, const char* option) {
  std::vector<std::int64_t> values;
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    try {
      std::size_t used = 0;
      values.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw CLI::ValidationError(option, "'" + text + "' is not a comma-separated list of integers");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

// A finite number in [low, high]: CLI::Range lets NaN through (every comparison with it
// is false), and its message prints DBL_MAX's 309 digits for an open range.
CLI::Validator finite_range(double low, double high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(value) || value < low || value > high)
          return "'" + text + "' is not a finite number in [" + CLI::detail::to_string(low) + ", " +
                 CLI::detail::to_string(high) + "]";
        return {};
      },
      "FINITE in [" + CLI::detail::to_string(low) + ", " + CLI::detail::to_string(high) + "]");
}

// Seeds are unsigned 64-bit: "-1" and 2^64 would otherwise wrap or saturate silently.
CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          ddpm::tools::parse_unsigned("seed", text);
        } catch (const std::exception& error) {
          return error.what();
        }
        return {};
      },
      "UINT64");
}

// A PNG path: the writer produces PNG whatever the name says, so another extension would
// leave a file its name misdescribes.
CLI::Validator png_path() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.size() < 4 || text.compare(text.size() - 4, 4, ".png") != 0)
          return "'" + text + "' must end in .png (the file is written as PNG)";
        return {};
      },
      "FILE.png");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ddpm::tools;
  // Past a file-size limit, let write() fail with EFBIG (reported like a full disk)
  // instead of the default SIGXFSZ killing the process mid-run.
  std::signal(SIGXFSZ, SIG_IGN);
  start_processes(&argc, &argv);
  CLI::App app{"ddpm: train, sample and inspect denoising diffusion models on the CPU"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every command");
  app.set_version_flag("--version", [] { std::string report = "ddpm " DDPM_VERSION "\n" + ddpm::system_report() + processes_report(); report.pop_back(); return report; },
                       "Version, instruction set and GEMM kernel in use, then exit");

  TrainOptions train;
  std::string ch_mult = "1,2,2", attention = "7";
  // Enum-valued settings are read as text checked against their name tables, then parsed.
  std::string schedule = ddpm::diffusion::schedule_kind_name(train.run.schedule);
  std::string loss = ddpm::diffusion::loss_type_name(train.run.loss);
  std::string prediction = ddpm::diffusion::prediction_name(train.run.prediction);
  std::string lr_schedule = ddpm::nn::learning_rate_schedule_name(train.run.learning_rate_schedule);
  auto* train_command = app.add_subcommand("train", "Train a DDPM (L_simple, the variational bound or the hybrid loss) and write checkpoints, a log and a loss plot");
  train_command->add_option("--data", train.run.data, "fashion-mnist, idx:IMAGES[,LABELS] (MNIST-format, .gz or not), or folder:PATH (square PNGs of one size; class subfolders give labels)")->capture_default_str();
  train_command->add_option("--ch", train.model.ch, "Base channel count (a multiple of 8)")->capture_default_str()->check(CLI::Range(8, 1024));
  train_command->add_option("--ch-mult", ch_mult, "Channel multipliers per level")->capture_default_str();
  train_command->add_option("--num-res-blocks", train.model.num_res_blocks, "Residual blocks per level")->capture_default_str()->check(CLI::Range(1, 16));
  train_command->add_option("--attn", attention, "Resolutions with self-attention (comma separated, empty for none)")->capture_default_str();
  train_command->add_option("--dropout", train.model.dropout, "Dropout in residual blocks")->capture_default_str()->check(finite_range(0.0, 0.99));
  train_command->add_option("--schedule", schedule, "Noise schedule")->capture_default_str()->check(CLI::IsMember(ddpm::names_of(ddpm::diffusion::schedule_kind_names)));
  train_command->add_option("--timesteps", train.run.timesteps, "Diffusion steps T")->capture_default_str()->check(CLI::Range(2, 100000));
  train_command->add_option("--loss", loss, "Training loss: simple (L_simple), vlb (the bound, T·L_t), hybrid (L_simple + 0.001·T·L_t, learns the variance)")->capture_default_str()->check(CLI::IsMember(ddpm::names_of(ddpm::diffusion::loss_type_names)));
  train_command->add_option("--predict", prediction, "What the network predicts: eps (the noise), x0 (the clean image), v (sqrt(abar) eps - sqrt(1-abar) x0); stored in the checkpoint")->capture_default_str()->check(CLI::IsMember(ddpm::names_of(ddpm::diffusion::prediction_names)));
  train_command->add_flag("--learn-sigma", train.model.learn_sigma, "Learned-range variance output (2C channels; implied by --loss hybrid)");
  train_command->add_flag("--class-cond", train.class_conditional, "Condition on the data's labels (null label dropout for guidance)");
  train_command->add_option("--label-dropout", train.run.label_dropout, "Probability of the null label with --class-cond")->capture_default_str()->check(finite_range(0.0, 1.0));
  train_command->add_option("--steps", train.steps, "Total training steps (a resumed run continues up to this)")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  train_command->add_option("--batch", train.run.batch, "Images per step (the global batch, over every micro-batch and process)")->capture_default_str()->check(CLI::Range(1, 65536));
  train_command->add_option("--micro-batches", train.run.micro_batches, "Run each step as this many forward/backward passes of batch/M images, gradients summed (memory falls as 1/M); under mpirun -np N each process runs M/N of them")->capture_default_str()->check(CLI::Range(1, 65536));
  train_command->add_option("--check-ranks-every", train.check_ranks_every, "Under mpirun: steps between checks that every process holds the same parameters (also at every checkpoint)")->capture_default_str()->check(CLI::Range(1, 1 << 30));
  train_command->add_option("--lr", train.run.learning_rate, "Adam learning rate")->capture_default_str()->check(finite_range(0.0, 1.0));
  train_command->add_option("--lr-schedule", lr_schedule, "Learning-rate schedule")->capture_default_str()->check(CLI::IsMember(ddpm::names_of(ddpm::nn::learning_rate_schedule_names)));
  train_command->add_option("--warmup", train.run.warmup, "Warm-up steps of the learning-rate schedule")->capture_default_str()->check(CLI::NonNegativeNumber);
  train_command->add_option("--ema", train.run.ema_decay, "EMA decay (with warm-up min(d, (1+n)/(10+n)))")->capture_default_str()->check(finite_range(0.0, 1.0));
  train_command->add_option("--clip", train.run.clip, "Global gradient-norm clip")->capture_default_str()->check(finite_range(1e-12, 1e6));
  train_command->add_option("--seed", train.run.seed, "Seed of initialisation, data order and noise")->capture_default_str()->check(seed_value());
  train_command->add_option("--threads", train.threads, "Worker threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  train_command->add_option("--out", train.out, "Output directory")->capture_default_str();
  train_command->add_option("--checkpoint-every", train.checkpoint_every, "Steps between checkpoints (and one at the end)")->capture_default_str()->check(CLI::NonNegativeNumber);
  train_command->add_option("--sample-every", train.sample_every, "Steps between sample grids (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
  train_command->add_option("--sample-count", train.sample_count, "Images in each sample grid")->capture_default_str()->check(CLI::Range(1, 1024));
  train_command->add_option("--sample-steps", train.sample_steps, "DDIM steps for the sample grids")->capture_default_str()->check(CLI::Range(1, 100000));
  train_command->add_option("--fid-every", train.fid_every, "Steps between FID measurements of the EMA model (0: never), logged to log.csv and plotted in loss.png")->capture_default_str()->check(CLI::NonNegativeNumber);
  train_command->add_option("--fid-samples", train.fid_samples, "Samples per FID measurement (DDIM, --fid-steps steps, the run's seed)")->capture_default_str()->check(CLI::Range(2, 1000000));
  train_command->add_option("--fid-steps", train.fid_steps, "DDIM steps of the FID samples")->capture_default_str()->check(CLI::Range(1, 100000));
  train_command->add_option("--log-every", train.log_every, "Steps between log.csv lines")->capture_default_str()->check(CLI::Range(1, 1000000));
  train_command->add_flag("--resume", train.resume, "Continue from DIR/checkpoint.safetensors (options that fix the run must agree with it)");
  train_command->add_flag("--overwrite", train.overwrite, "Replace a run already in --out");
  train_command->add_flag("--quiet", train.quiet, "No progress line");

  SampleOptions sample;
  auto* sample_command = app.add_subcommand("sample", "Draw images from a checkpoint into a PNG grid");
  sample_command->add_option("--checkpoint", sample.checkpoint, "Checkpoint file")->required();
  sample_command->add_option("--out", sample.out, "PNG grid to write")->capture_default_str()->check(png_path());
  sample_command->add_option("--n", sample.n, "Number of images")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sample_command->add_option("--batch", sample.batch, "Images per model call")->capture_default_str()->check(CLI::Range(1, 4096));
  sample_command->add_option("--seed", sample.seed, "Noise seed (the same seed gives the same images for any --batch)")->capture_default_str()->check(seed_value());
  sample_command->add_option("--sampler", sample.sampler, "Sampler")->capture_default_str()->check(CLI::IsMember({"ancestral", "ddim"}));
  sample_command->add_option("--steps", sample.steps, "Sampling steps (0: all T; fewer: respaced)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sample_command->add_option("--eta", sample.eta, "DDIM eta (0: deterministic)")->capture_default_str()->check(finite_range(0.0, 10.0));
  sample_command->add_option("--variance", sample.variance, "Ancestral variance: large (beta), small (posterior), learned; auto: learned if the model learns it, else large")->capture_default_str()->check(CLI::IsMember({"auto", "large", "small", "learned"}));
  sample_command->add_flag("--ema,!--no-ema", sample.ema, "Use the EMA weights (default) or the raw ones");
  sample_command->add_option("--class", sample.label, "Class label for conditional models (-1: unconditional)")->capture_default_str()->check(CLI::Range(std::int64_t{-1}, std::int64_t{1} << 30));
  sample_command->add_option("--guidance", sample.guidance, "Classifier-free guidance weight w")->capture_default_str()->check(finite_range(-100.0, 100.0));
  sample_command->add_option("--trajectory", sample.trajectory, "PNG of the denoising process (rows: samples; columns: x_t from noise to image)");
  sample_command->add_option("--raw", sample.raw, "Save the samples as a tensor: FILE.safetensors (float in [-1, 1]) or an IDX file (bytes)");
  sample_command->add_option("--threads", sample.threads, "Worker threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  sample_command->add_flag("--quiet", sample.quiet, "No progress line");

  EvalOptions evaluation;
  auto* eval_command = app.add_subcommand("eval", "Bits/dim of a data split under a checkpoint (the full variational bound)");
  eval_command->add_option("--checkpoint", evaluation.checkpoint, "Checkpoint file (bits/dim, or the model to sample for --fid)");
  eval_command->add_option("--data", evaluation.data, "Data source (default: the checkpoint's)");
  eval_command->add_option("--split", evaluation.split, "Split")->capture_default_str()->check(CLI::IsMember({"train", "test"}));
  eval_command->add_option("--n-images", evaluation.n_images, "Images to evaluate (0: all; each costs T model calls)")->capture_default_str()->check(CLI::NonNegativeNumber);
  eval_command->add_option("--batch", evaluation.batch, "Images per model call")->capture_default_str()->check(CLI::Range(1, 4096));
  eval_command->add_option("--seed", evaluation.seed, "Noise seed")->capture_default_str()->check(seed_value());
  eval_command->add_option("--variance", evaluation.variance, "Model variance: large, small, learned; auto: learned if the model learns it, else large")->capture_default_str()->check(CLI::IsMember({"auto", "large", "small", "learned"}));
  eval_command->add_flag("--ema,!--no-ema", evaluation.ema, "Use the EMA weights (default) or the raw ones");
  eval_command->add_option("--json", evaluation.json, "Also write the results as JSON to this file");
  eval_command->add_option("--threads", evaluation.threads, "Worker threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  eval_command->add_flag("--quiet", evaluation.quiet, "No progress line");
  eval_command->add_flag("--fid", evaluation.fid, "Sample quality instead of bits/dim: FID, KID, precision/recall, classes, memorisation");
  eval_command->add_option("--images", evaluation.images, "With --fid: measure these images (.safetensors as sample --raw writes, IDX, or a folder of PNGs)");
  eval_command->add_option("--n-samples", evaluation.n_samples, "With --fid: images to sample from the checkpoint")->capture_default_str()->check(CLI::Range(2, 1000000));
  eval_command->add_option("--sampler", evaluation.sampler, "With --fid: ancestral or ddim")->capture_default_str()->check(CLI::IsMember({"ancestral", "ddim"}));
  eval_command->add_option("--steps", evaluation.steps, "With --fid: sampling steps (0: every step of the schedule)")->capture_default_str()->check(CLI::NonNegativeNumber);
  eval_command->add_option("--eta", evaluation.eta, "With --fid: DDIM's eta")->capture_default_str()->check(CLI::NonNegativeNumber);
  eval_command->add_option("--classifier", evaluation.classifier, "With --fid: the feature network's weights (default: models/fashion-mnist-classifier.safetensors)");
  eval_command->add_option("--features", evaluation.features, "With --fid: also write both sets' features to this safetensors file");
  eval_command->add_flag("--memorisation,!--no-memorisation", evaluation.memorisation, "With --fid: check for copies of training images (default on)");

  std::string info_path;
  bool info_system = false;
  auto* info_command = app.add_subcommand("info", "Show what a checkpoint holds, or which code paths this machine takes");
  info_command->add_option("file", info_path, "Checkpoint file");
  info_command->add_flag("--system", info_system, "The build's instruction set, the GEMM kernels this CPU has and the one in use");

  ClassifierOptions classifier;
  auto* classifier_command = app.add_subcommand("classifier", "Train or test the feature network of FID (a small CNN classifier of 28 x 28 gray images)");
  classifier_command->require_subcommand(1);
  auto* classifier_train = classifier_command->add_subcommand("train", "Train it on a labelled data set, report its test accuracy and fingerprint, write its weights");
  auto* classifier_test = classifier_command->add_subcommand("test", "Test accuracy and fingerprint of its weights");
  for (CLI::App* command : {classifier_train, classifier_test}) {
    command->add_option("--data", classifier.data, "Labelled 28 x 28 gray images, as ddpm train --data")->capture_default_str();
    command->add_option("--weights", classifier.weights, "Weights file (safetensors)")->capture_default_str();
    command->add_option("--threads", classifier.threads, "Worker threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  }
  classifier_train->add_option("--epochs", classifier.epochs, "Passes over the training split")->capture_default_str()->check(CLI::Range(1, 1000));
  classifier_train->add_option("--batch", classifier.batch, "Images per step")->capture_default_str()->check(CLI::Range(1, 65536));
  classifier_train->add_option("--lr", classifier.lr, "AdamW learning rate (cosine decay to 0)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  classifier_train->add_option("--weight-decay", classifier.weight_decay, "AdamW's decoupled weight decay")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  classifier_train->add_option("--seed", classifier.seed, "Seed of initialisation and data order")->capture_default_str()->check(seed_value());
  classifier_train->add_flag("--quiet", classifier.quiet, "No progress line");

  // CLI11 says only "A subcommand is required" for a word it does not know: name it.
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' && first != "train" && first != "sample" && first != "eval" && first != "info" &&
      first != "classifier") {
    std::fprintf(stderr, "ddpm: unknown command '%s' (commands: train, sample, eval, info, classifier; ddpm --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    if (train_command->parsed()) {
      train.model.ch_mult = parse_list(ch_mult, "--ch-mult");
      train.model.attn_resolutions = parse_list(attention, "--attn");
      train.run.schedule = ddpm::diffusion::parse_schedule_kind(schedule);
      train.run.loss = ddpm::diffusion::parse_loss_type(loss);
      train.run.prediction = ddpm::diffusion::parse_prediction(prediction);
      train.run.learning_rate_schedule = ddpm::nn::parse_learning_rate_schedule(lr_schedule);
      train.data_given = train_command->count("--data") > 0;
      for (const CLI::Option* option : train_command->get_options())
        if (option->count() > 0) train.given.insert(option->get_name());
      return run_train(train);
    }
    if (sample_command->parsed()) return run_sample(sample);
    if (classifier_train->parsed()) return run_classifier_train(classifier);
    if (classifier_test->parsed()) return run_classifier_test(classifier);
    if (eval_command->parsed()) return run_eval(evaluation);
    if (info_command->parsed()) {
      if (info_system) std::fputs((ddpm::system_report() + processes_report()).c_str(), stdout);
      if (info_path.empty() && !info_system) throw CLI::ValidationError("info", "give a checkpoint file, --system, or both");
      return info_path.empty() ? 0 : run_info(info_path);
    }
  } catch (const CLI::ValidationError& error) {
    std::fprintf(stderr, "ddpm: %s\n", error.what());
    return end_after_error(2);
  } catch (const std::exception& error) {
    if (processes().size() > 1)
      std::fprintf(stderr, "\nddpm: error on rank %d of %d: %s\n", processes().rank(), processes().size(), error.what());
    else
      std::fprintf(stderr, "\nddpm: error: %s\n", error.what());
    return end_after_error(1);
  }
  return 0;
}
