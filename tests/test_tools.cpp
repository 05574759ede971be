// The command line's loaders and writers: IDX (plain and gzip), PNG, grids, data order.
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "tests/test_support.hpp"
#include "tools/dataset.hpp"
#include "tools/idx.hpp"
#include "tools/image_grid.hpp"
#include "tools/png_image.hpp"

namespace ddpm::testing {
namespace {

struct ScratchDirectory {
  std::filesystem::path path = std::filesystem::temp_directory_path() / ("ddpm-tools-" + std::to_string(::getpid()));
  ScratchDirectory() { std::filesystem::create_directories(path); }
  ~ScratchDirectory() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("IDX files round-trip, plain and gzip-compressed") {
  ScratchDirectory scratch;
  std::vector<std::uint8_t> pixels(3 * 4 * 4);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 5);
  tools::write_idx(scratch.file("images.idx"), {3, 4, 4}, pixels);
  const tools::IdxArray plain = tools::read_idx(scratch.file("images.idx"));
  CHECK(plain.shape == std::vector<std::int64_t>{3, 4, 4});
  CHECK(plain.data == pixels);
  // The same bytes gzip-compressed.
  std::ifstream source(scratch.file("images.idx"), std::ios::binary);
  const std::vector<char> raw((std::istreambuf_iterator<char>(source)), std::istreambuf_iterator<char>());
  gzFile compressed = gzopen(scratch.file("images.idx.gz").c_str(), "wb");
  gzwrite(compressed, raw.data(), static_cast<unsigned>(raw.size()));
  gzclose(compressed);
  CHECK(tools::read_idx(scratch.file("images.idx.gz")).data == pixels);
  // As a data set, with labels.
  tools::write_idx(scratch.file("labels.idx"), {3}, {2, 0, 7});
  const tools::Dataset data = tools::load_dataset("idx:" + scratch.file("images.idx.gz") + "," + scratch.file("labels.idx"));
  CHECK(data.count == 3);
  CHECK(data.size == 4);
  CHECK(data.classes == 8);
  const Tensor batch = data.batch({2, 0});
  CHECK(batch.shape() == Shape{2, 1, 4, 4});
  CHECK(batch.at({1, 0, 0, 1}) == doctest::Approx(5 / 127.5 - 1));
  CHECK(data.batch_labels({2, 0}).to_vector<std::int64_t>() == std::vector<std::int64_t>{7, 2});
}

TEST_CASE("bad IDX files get an error naming the file and the problem") {
  ScratchDirectory scratch;
  auto rejected = [&](const std::vector<std::uint8_t>& bytes, const char* expected) {
    write_bytes(scratch.file("bad.idx"), bytes);
    INFO(expected);
    CHECK_THROWS_WITH_AS(tools::read_idx(scratch.file("bad.idx")), doctest::Contains(expected), std::runtime_error);
  };
  rejected({0, 0, 8}, "truncated: the header needs 4 bytes");
  rejected({1, 0, 8, 3}, "not an IDX file");
  rejected({0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "element type");
  rejected({0, 0, 8, 9}, "rank 9");
  rejected({0, 0, 8, 1, 0, 0, 0, 4, 1, 2}, "truncated: the data needs 4 bytes, file has 2");
  rejected({0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3}, "has data after the 2 bytes");
  rejected({0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 1}, "dimension 0 is zero");
  // Found by fuzz_idx: a header announcing 12 GB in a 34-byte file once made the reader
  // allocate it all before reading; now the buffer only grows with the data.
  rejected({0, 0, 8, 3, 0, 0x80, 0, 2, 0, 0, 0, 3, 0, 0, 2, 0, 1, 3, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17},
           "truncated: the data needs 12884904960 bytes, file has 18");
  CHECK_THROWS_WITH_AS(tools::read_idx(scratch.file("absent.idx")), doctest::Contains("absent.idx: cannot open"), std::runtime_error);
  tools::write_idx(scratch.file("wide.idx"), {2, 3, 4}, std::vector<std::uint8_t>(24));
  CHECK_THROWS_WITH_AS(tools::load_dataset("idx:" + scratch.file("wide.idx")), doctest::Contains("must be square"), std::runtime_error);
  tools::write_idx(scratch.file("square.idx"), {2, 3, 3}, std::vector<std::uint8_t>(18));
  tools::write_idx(scratch.file("labels.idx"), {3}, {1, 2, 3});
  CHECK_THROWS_WITH_AS(tools::load_dataset("idx:" + scratch.file("square.idx") + "," + scratch.file("labels.idx")),
                       doctest::Contains("expected 2 labels"), std::runtime_error);
  CHECK_THROWS_WITH_AS(tools::load_dataset("mnist"), doctest::Contains("unknown data source 'mnist'"), std::runtime_error);
}

TEST_CASE("PNG grids decode with libpng to the expected size and values") {
  ScratchDirectory scratch;
  const Tensor images = Tensor::from_vector<float>({-1, 1, 0, 0.5f, -1, -1, -1, -1, 1, 1, 1, 1}, {3, 1, 2, 2});
  const tools::Image grid = tools::image_grid(images);  // 2 columns, 2 rows of 2x2 with 2 px borders
  CHECK(grid.width == 2 * (2 + 2) + 2);
  CHECK(grid.height == 2 * (2 + 2) + 2);
  tools::write_png(scratch.file("grid.png"), grid);
  const tools::Image decoded = tools::read_png(scratch.file("grid.png"));
  CHECK(decoded.width == grid.width);
  CHECK(decoded.height == grid.height);
  CHECK(decoded.channels == 1);
  CHECK(decoded.pixels == grid.pixels);
  CHECK(decoded.pixels[2 * decoded.width + 2] == 0);    // image 0, pixel (0, 0) = -1
  CHECK(decoded.pixels[2 * decoded.width + 3] == 255);  // pixel (0, 1) = 1
  CHECK(decoded.pixels[3 * decoded.width + 2] == 128);  // pixel (1, 0) = 0 -> 127.5 rounds to 128
  write_bytes(scratch.file("broken.png"), {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0});
  CHECK_THROWS_WITH_AS(tools::read_png(scratch.file("broken.png")), doctest::Contains("corrupt or truncated"), std::runtime_error);
}

namespace {
tools::Image patterned_image(std::int64_t size, std::int64_t channels, std::uint8_t base) {
  tools::Image image{size, size, channels, {}};
  for (std::int64_t i = 0; i < size * size * channels; ++i) image.pixels.push_back(static_cast<std::uint8_t>(base + i));
  return image;
}
}  // namespace

TEST_CASE("a folder of PNGs: planar pixels, class subfolders as labels, gray joining RGB, splits") {
  ScratchDirectory scratch;
  namespace fs = std::filesystem;
  // Unlabelled: PNGs directly in the folder, read in sorted name order.
  fs::create_directories(scratch.path / "plain");
  tools::write_png(scratch.file("plain/b.png"), patterned_image(2, 3, 100));
  tools::write_png(scratch.file("plain/a.png"), patterned_image(2, 3, 0));
  tools::write_png(scratch.file("plain/c.PNG"), patterned_image(2, 1, 50));
  write_bytes(scratch.file("plain/notes.txt"), {'x'});
  const tools::Dataset plain = tools::load_dataset("folder:" + scratch.file("plain"));
  CHECK(plain.count == 3);
  CHECK(plain.channels == 3);
  CHECK(plain.size == 2);
  CHECK(plain.labels.empty());
  // a.png interleaved RGB 0,1,2 | 3,4,5 | ... -> planar: R = 0,3,6,9; G = 1,4,7,10.
  CHECK(std::vector<std::uint8_t>(plain.pixels.begin(), plain.pixels.begin() + 8) ==
        std::vector<std::uint8_t>{0, 3, 6, 9, 1, 4, 7, 10});
  CHECK(plain.pixels[12] == 100);  // b.png, R of pixel 0
  // c.PNG is gray 50..53: the same values in all three planes.
  CHECK(plain.pixels[24] == 50);
  CHECK(plain.pixels[24 + 4] == 50);
  CHECK(plain.pixels[24 + 8 + 3] == 53);
  CHECK(plain.batch({0}).at({0, 1, 0, 1}) == doctest::Approx(4 / 127.5 - 1));

  // Labelled: one class per subfolder, numbered by sorted name; train/ and test/ splits.
  for (const char* split : {"train", "test"})
    for (const char* name : {"cat", "ant"}) fs::create_directories(scratch.path / "classes" / split / name);
  tools::write_png(scratch.file("classes/train/cat/1.png"), patterned_image(3, 1, 0));
  tools::write_png(scratch.file("classes/train/ant/1.png"), patterned_image(3, 1, 0));
  tools::write_png(scratch.file("classes/train/ant/2.png"), patterned_image(3, 1, 0));
  tools::write_png(scratch.file("classes/test/cat/9.png"), patterned_image(3, 1, 7));
  const tools::Dataset train = tools::load_dataset("folder:" + scratch.file("classes"), "train");
  CHECK(train.count == 3);
  CHECK(train.labels == std::vector<std::int64_t>{0, 0, 1});
  CHECK(train.classes == 2);
  const tools::Dataset test = tools::load_dataset("folder:" + scratch.file("classes"), "test");
  CHECK(test.count == 1);
  CHECK(test.pixels[0] == 7);
  CHECK(test.labels == std::vector<std::int64_t>{0});  // "ant" in test/ is empty: cat is class 0 there
}

TEST_CASE("bad PNG folders get an error naming the file and the problem") {
  ScratchDirectory scratch;
  namespace fs = std::filesystem;
  CHECK_THROWS_WITH_AS(tools::load_dataset("folder:" + scratch.file("missing")), doctest::Contains("not a directory"), std::runtime_error);
  fs::create_directories(scratch.path / "empty");
  CHECK_THROWS_WITH_AS(tools::load_dataset("folder:" + scratch.file("empty")), doctest::Contains("no .png files"), std::runtime_error);
  fs::create_directories(scratch.path / "mixed");
  tools::write_png(scratch.file("mixed/a.png"), patterned_image(4, 1, 0));
  tools::write_png(scratch.file("mixed/b.png"), patterned_image(5, 1, 0));
  CHECK_THROWS_WITH_AS(tools::load_dataset("folder:" + scratch.file("mixed")),
                       doctest::Contains(("b.png: is 5x5 but " + scratch.file("mixed/a.png") + " is 4x4").c_str()), std::runtime_error);
  fs::create_directories(scratch.path / "wide");
  tools::write_png(scratch.file("wide/a.png"), tools::Image{4, 2, 1, std::vector<std::uint8_t>(8, 0)});
  CHECK_THROWS_WITH_AS(tools::load_dataset("folder:" + scratch.file("wide")), doctest::Contains("a.png: images must be square, got 4x2"),
                       std::runtime_error);
  fs::create_directories(scratch.path / "broken");
  write_bytes(scratch.file("broken/a.png"), {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0});
  CHECK_THROWS_WITH_AS(tools::load_dataset("folder:" + scratch.file("broken")), doctest::Contains("a.png"), std::runtime_error);
}

TEST_CASE("the data order is a fresh permutation every epoch, recomputable from (seed, step)") {
  std::vector<int> seen(10, 0);
  for (std::int64_t step = 0; step < 5; ++step)
    for (std::int64_t index : tools::batch_indices(10, 7, step, 2)) ++seen[static_cast<std::size_t>(index)];
  CHECK(std::all_of(seen.begin(), seen.end(), [](int count) { return count == 1; }));
  CHECK(tools::batch_indices(10, 7, 3, 2) == tools::batch_indices(10, 7, 3, 2));
  CHECK(tools::batch_indices(10, 7, 5, 5) != tools::batch_indices(10, 7, 0, 5));  // epoch 1 differs from epoch 0
}

}  // namespace ddpm::testing
