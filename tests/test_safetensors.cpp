#include <filesystem>
#include <fstream>

#include "nn/safetensors.hpp"
#include "tests/test_support.hpp"

namespace ddpm::testing {
namespace {

std::vector<std::uint8_t> with_header(const std::string& header, std::size_t data_bytes) {
  std::vector<std::uint8_t> bytes(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(header.size()) >> (8 * i));
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

void check_rejected(const std::vector<std::uint8_t>& bytes, const std::string& expected) {
  INFO("expected: ", expected);
  CHECK_THROWS_WITH_AS(parse_safetensors(bytes, "case.safetensors"), doctest::Contains(expected.c_str()), SafetensorsError);
}

}  // namespace

TEST_CASE("safetensors round trips F32, F64, I64 and metadata bit for bit") {
  const Tensor a = random_tensor({3, 5}, 1, DType::Float32);
  const Tensor b = random_tensor({2, 1, 4}, 2, DType::Float64);
  const Tensor c = Tensor::from_vector<std::int64_t>({-3, 0, 7}, {3});
  const Tensor scalar = Tensor::scalar(2.5);
  const Tensor empty = zeros({0, 4});
  const auto bytes = serialize_safetensors({{"layer.weight", a.transpose(0, 1)}, {"b", b}, {"labels", c},
                                            {"scalar", scalar}, {"empty", empty}},
                                           {{"step", "42"}, {"config", "{\"ch\": 32}"}});
  CHECK((bytes.size() - 8 - (bytes[0] | bytes[1] << 8)) % 8 == 0);
  const SafetensorsContents contents = parse_safetensors(bytes, "memory");
  REQUIRE(contents.tensors.size() == 5);
  CHECK(contents.tensors[0].first == "layer.weight");
  CHECK(bitwise_equal(*contents.find("layer.weight"), a.transpose(0, 1)));
  CHECK(bitwise_equal(*contents.find("b"), b));
  CHECK(bitwise_equal(*contents.find("labels"), c));
  CHECK(contents.find("scalar")->shape() == Shape{});
  CHECK(contents.find("empty")->shape() == Shape{0, 4});
  CHECK(contents.metadata.at("step") == "42");
  CHECK(contents.metadata.at("config") == "{\"ch\": 32}");
  CHECK(contents.find("missing") == nullptr);
}

TEST_CASE("writing is atomic: a file appears whole, under its name, with no temporary left") {
  const auto directory = std::filesystem::temp_directory_path() / ("ddpm-safetensors-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "model.safetensors").string();
  write_safetensors(path, {{"w", ones({2, 2})}});
  write_safetensors(path, {{"w", full({2, 2}, 3.0)}});  // replaces the old file
  CHECK(read_safetensors(path).find("w")->to_vector<float>() == std::vector<float>{3, 3, 3, 3});
  CHECK(std::distance(std::filesystem::directory_iterator(directory), std::filesystem::directory_iterator()) == 1);
  CHECK_THROWS_WITH_AS(write_safetensors((directory / "no-such-dir" / "x.safetensors").string(), {{"w", ones({1})}}),
                       doctest::Contains("cannot create"), SafetensorsError);
  CHECK_THROWS_WITH_AS(read_safetensors((directory / "absent.safetensors").string()), doctest::Contains("cannot open"),
                       SafetensorsError);
  std::filesystem::remove_all(directory);
}

TEST_CASE("every corrupted safetensors file gets an error that says what and where") {
  const auto good = serialize_safetensors({{"a", ones({2})}, {"b", ones({3})}});
  // Truncated: the data section shrinks, so the tensors no longer fit.
  check_rejected(std::vector<std::uint8_t>(good.begin(), good.end() - 4), "fall outside");
  check_rejected(std::vector<std::uint8_t>(good.begin(), good.begin() + 5), "too short");
  // Header length far beyond the file.
  auto huge = good;
  huge[7] = 0x7f;
  check_rejected(huge, "exceeds");
  check_rejected(with_header("{\"a\": {\"dtype\": \"F32\", ", 0), "not valid JSON");
  check_rejected(with_header("[1, 2]", 0), "not a JSON object");
  check_rejected(with_header(R"({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}})", 2),
                 "unsupported dtype 'BF16'");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
                 "tensor 'a': shape [3] of F32 needs 12 bytes, data_offsets span 8");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
                 "not a non-negative integer");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4), "fall outside");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8), "(overlap)");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8), "(gap)");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 12),
                 "cover 4 of the 12 data bytes");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1]}})", 4), "data_offsets must be");
  check_rejected(with_header(R"({"__metadata__": {"step": 3}})", 0), "value of 'step' is not a string");
  check_rejected(with_header(R"({"a": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}})", 4),
                 "implausibly large");
}

TEST_CASE("writing rejects duplicate and reserved names") {
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"a", ones({1})}, {"a", ones({1})}}), doctest::Contains("appears twice"),
                       SafetensorsError);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"__metadata__", ones({1})}}), doctest::Contains("reserved"),
                       SafetensorsError);
}

}  // namespace ddpm::testing
