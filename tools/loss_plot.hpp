#pragma once
// A PNG picture of the training loss (log scale), redrawn as training goes.
#include <string>
#include <utility>
#include <vector>

namespace ddpm::tools {

struct LossHistory {
  std::vector<std::pair<std::int64_t, double>> points;  // (step, mean loss since the last point)
  void add(std::int64_t step, double loss) { points.emplace_back(step, loss); }
  static LossHistory from_csv(const std::string& path);  // the step and loss columns of log.csv
};

// 640 x 320, white background, gray axes, the curve in dark blue: x = step, y = log10(loss)
// spanning the values seen.
void write_loss_plot(const std::string& path, const LossHistory& history);

}  // namespace ddpm::tools
