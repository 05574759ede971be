#include "tools/loss_plot.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "tools/png_image.hpp"

namespace ddpm::tools {

LossHistory LossHistory::from_csv(const std::string& path) {
  LossHistory history;
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);  // header: find the fid column, which older logs lack
  std::vector<std::string> names;
  {
    std::istringstream header(line);
    for (std::string name; std::getline(header, name, ',');) names.push_back(name);
  }
  const auto fid_column = std::find(names.begin(), names.end(), "fid") - names.begin();
  history.has_fid_columns = fid_column < static_cast<std::ptrdiff_t>(names.size());
  while (std::getline(file, line)) {
    std::vector<std::string> fields;
    std::istringstream row(line);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    try {  // a torn last line after a crash fails to parse: skip it
      if (fields.size() >= 2) history.add(std::stoll(fields[0]), std::stod(fields[1]));
      if (history.has_fid_columns && static_cast<std::ptrdiff_t>(fields.size()) > fid_column && !fields[static_cast<std::size_t>(fid_column)].empty())
        history.add_fid(std::stoll(fields[0]), std::stod(fields[static_cast<std::size_t>(fid_column)]));
    } catch (const std::exception&) {
    }
  }
  return history;
}

void write_loss_plot(const std::string& path, const LossHistory& history) {
  constexpr std::int64_t width = 640, height = 320, margin = 20;
  Image image{width, height, 3, std::vector<std::uint8_t>(width * height * 3, 255)};
  auto plot = [&](std::int64_t x, std::int64_t y, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    std::uint8_t* pixel = image.pixels.data() + (y * width + x) * 3;
    pixel[0] = r, pixel[1] = g, pixel[2] = b;
  };
  // A straight segment `thickness` pixels high.
  auto line = [&](std::pair<double, double> from, std::pair<double, double> to, std::uint8_t r, std::uint8_t g, std::uint8_t b,
                  int thickness) {
    const auto [x0, y0] = from;
    const auto [x1, y1] = to;
    const int segments = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int s = 0; s <= segments; ++s) {
      const double t = static_cast<double>(s) / segments;
      const auto x = static_cast<std::int64_t>(std::lround(x0 + t * (x1 - x0)));
      const auto y = static_cast<std::int64_t>(std::lround(y0 + t * (y1 - y0)));
      for (int k = 0; k < thickness; ++k) plot(x, y + k, r, g, b);
    }
  };
  for (std::int64_t x = margin; x < width - margin; ++x) plot(x, height - margin, 150, 150, 150);
  for (std::int64_t y = margin; y < height - margin; ++y) plot(margin, y, 150, 150, 150);
  std::vector<std::pair<double, double>> points;
  for (auto [step, loss] : history.points)
    if (loss > 0 && std::isfinite(loss)) points.emplace_back(static_cast<double>(step), std::log10(loss));
  if (points.size() >= 2) {
    double low = points[0].second, high = low;
    for (auto& p : points) low = std::min(low, p.second), high = std::max(high, p.second);
    if (high - low < 1e-6) high = low + 1e-6;
    const double first = points.front().first, last = std::max(points.back().first, first + 1);
    auto to_pixel = [&](std::pair<double, double> p) {
      return std::pair<double, double>{margin + (p.first - first) / (last - first) * (width - 2 * margin),
                                       height - margin - (p.second - low) / (high - low) * (height - 2 * margin)};
    };
    for (std::size_t i = 1; i < points.size(); ++i) line(to_pixel(points[i - 1]), to_pixel(points[i]), 20, 40, 160, 2);
    // FID on the same step axis, scaled from 0 to its largest value.
    double largest = 0;
    for (auto [step, fid] : history.fid_points) largest = std::max(largest, fid);
    auto fid_pixel = [&](std::pair<std::int64_t, double> p) {
      return std::pair<double, double>{margin + (static_cast<double>(p.first) - first) / (last - first) * (width - 2 * margin),
                                       height - margin - p.second / std::max(largest, 1e-9) * (height - 2 * margin)};
    };
    for (std::size_t i = 0; i < history.fid_points.size(); ++i) {
      const auto [x, y] = fid_pixel(history.fid_points[i]);
      for (int dx = -2; dx <= 2; ++dx)
        for (int dy = -2; dy <= 2; ++dy) plot(std::lround(x) + dx, std::lround(y) + dy, 230, 120, 20);
      if (i > 0) line(fid_pixel(history.fid_points[i - 1]), {x, y}, 230, 120, 20, 1);
    }
  }
  write_png(path, image);
}

}  // namespace ddpm::tools
