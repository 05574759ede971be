#include "tests/test_support.hpp"

namespace ddpm::testing {

TEST_CASE("views share storage and see writes through each other") {
  Tensor x = arange(0, 12).view({3, 4});
  Tensor t = x.transpose(0, 1);
  CHECK(t.shape() == Shape{4, 3});
  CHECK(t.strides() == Strides{1, 4});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.shares_storage_with(x));
  Tensor column = x.narrow(1, 2, 1);
  column.fill_(-1);
  CHECK(x.at({1, 2}) == -1);
  CHECK(t.at({2, 1}) == -1);
  CHECK(x.version() == t.version());
}

TEST_CASE("reshape is a view when contiguous and a copy otherwise") {
  Tensor x = arange(0, 6).view({2, 3});
  CHECK(x.reshape({3, 2}).shares_storage_with(x));
  CHECK(x.reshape({-1}).shape() == Shape{6});
  Tensor t = x.transpose(0, 1);
  Tensor flat = t.reshape({6});
  CHECK_FALSE(flat.shares_storage_with(x));
  CHECK(flat.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_WITH_AS(t.view({6}), doctest::Contains("not contiguous"), TensorError);
}

TEST_CASE("slice, select, expand, squeeze and unsqueeze") {
  Tensor x = arange(0, 10);
  CHECK(x.slice(0, 1, 8, 3).to_vector<float>() == std::vector<float>{1, 4, 7});
  CHECK(x.slice(0, -3, 10).to_vector<float>() == std::vector<float>{7, 8, 9});
  Tensor m = arange(0, 6).view({2, 3});
  CHECK(m.select(0, 1).to_vector<float>() == std::vector<float>{3, 4, 5});
  CHECK(m.select(1, -1).to_vector<float>() == std::vector<float>{2, 5});
  Tensor column = arange(0, 2).view({2, 1});
  Tensor wide = column.expand({3, 2, 4});
  CHECK(wide.strides() == Strides{0, 1, 0});
  CHECK(wide.contiguous().to_vector<float>()[5] == 1);
  CHECK(column.squeeze(1).shape() == Shape{2});
  CHECK(column.unsqueeze(0).shape() == Shape{1, 2, 1});
  CHECK(column.unsqueeze(-1).shape() == Shape{2, 1, 1});
}

TEST_CASE("permute, contiguous and clone") {
  Tensor x = arange(0, 24).view({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at({3, 1, 2}) == x.at({1, 2, 3}));
  Tensor c = p.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.at({3, 1, 2}) == 23);
  Tensor cloned = x.clone();
  cloned.fill_(0);
  CHECK(x.at({1, 2, 3}) == 23);
}

TEST_CASE("copies of views equal the view element by element, whatever axes merge") {
  // Channel slices (rows of c·H·W contiguous values), a permutation, a broadcast, a slice of
  // the last axis, and a cast on the way: each compared with at() on every element.
  const Tensor x = arange(0, 2 * 5 * 3 * 7).view({2, 5, 3, 7});
  const std::vector<Tensor> views = {x.narrow(1, 1, 3),         x.narrow(1, 4, 1),
                                     x.permute({0, 2, 1, 3}),    x.narrow(3, 2, 4),
                                     x.narrow(0, 1, 1).expand({3, 5, 3, 7}), x.narrow(2, 1, 2).narrow(1, 0, 4)};
  for (const Tensor& view : views) {
    for (DType dtype : {DType::Float64, DType::Float32}) {
      const Tensor copy = view.to(dtype).contiguous();
      Tensor into = Tensor::empty(view.shape(), dtype);
      into.copy_(view);
      INFO(shape_string(view.shape()), " strides ", shape_string(view.strides()), " ", dtype_name(dtype));
      std::vector<std::int64_t> index(4, 0);
      bool all_equal = true;
      for (std::int64_t i = 0; i < view.numel(); ++i) {
        std::int64_t rest = i;
        for (std::size_t axis = 4; axis-- > 0;) index[axis] = rest % view.size(axis), rest /= view.size(axis);
        all_equal = all_equal && copy.at(index) == view.at(index) && into.at(index) == view.at(index);
      }
      CHECK(all_equal);
    }
  }
}

TEST_CASE("buffers are 64-byte aligned and casts convert values") {
  for (int i = 0; i < 5; ++i) {
    Tensor t = Tensor::empty({static_cast<std::int64_t>(3 + i)});
    CHECK(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64 == 0);
  }
  Tensor x = Tensor::from_vector<double>({1.5, -2.25}, {2});
  CHECK(x.to(DType::Float32).to_vector<float>() == std::vector<float>{1.5f, -2.25f});
  CHECK(x.to(DType::Int64).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, -2});
}

TEST_CASE("the printer shows values, shape and dtype, eliding long axes") {
  CHECK(to_string(arange(0, 4).view({2, 2})) == "tensor([[0, 1], [2, 3]], shape=[2, 2], dtype=float32)");
  const std::string long_text = to_string(arange(0, 100, 1, DType::Int64));
  CHECK(long_text.find("0, 1, 2, ..., 97, 98, 99") != std::string::npos);
  CHECK(long_text.find("int64") != std::string::npos);
}

}  // namespace ddpm::testing
