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
  std::getline(file, line);  // header
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string step, loss;
    if (std::getline(fields, step, ',') && std::getline(fields, loss, ',')) {
      try {
        history.add(std::stoll(step), std::stod(loss));
      } catch (const std::exception&) {  // a torn last line after a crash: skip it
      }
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
    for (std::size_t i = 1; i < points.size(); ++i) {
      const auto [x0, y0] = to_pixel(points[i - 1]);
      const auto [x1, y1] = to_pixel(points[i]);
      const int segments = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
      for (int s = 0; s <= segments; ++s) {
        const double t = static_cast<double>(s) / segments;
        const auto x = static_cast<std::int64_t>(std::lround(x0 + t * (x1 - x0)));
        const auto y = static_cast<std::int64_t>(std::lround(y0 + t * (y1 - y0)));
        plot(x, y, 20, 40, 160);
        plot(x, y + 1, 20, 40, 160);
      }
    }
  }
  write_png(path, image);
}

}  // namespace ddpm::tools
