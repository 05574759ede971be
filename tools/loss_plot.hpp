#pragma once
// A PNG picture of the training loss (log scale), redrawn as training goes.
#include <string>
#include <utility>
#include <vector>

namespace ddpm::tools {

struct LossHistory {
  std::vector<std::pair<std::int64_t, double>> points;      // (step, mean loss since the last point)
  std::vector<std::pair<std::int64_t, double>> fid_points;  // (step, FID) where measured
  bool has_fid_columns = false;                             // log.csv has the fid and kid columns
  void add(std::int64_t step, double loss) { points.emplace_back(step, loss); }
  void add_fid(std::int64_t step, double fid) { fid_points.emplace_back(step, fid); }
  static LossHistory from_csv(const std::string& path);  // the step, loss and fid columns of log.csv
};

// 640 x 320, white background, gray axes: the loss in dark blue (x = step, y = log10 loss
// spanning the values seen) and, where measured, FID in orange on its own linear scale
// from 0 to its largest value, one dot per measurement joined by a thin line.
void write_loss_plot(const std::string& path, const LossHistory& history);

}  // namespace ddpm::tools
