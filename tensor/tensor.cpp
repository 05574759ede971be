#include "tensor/tensor.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"
#include "tensor/strided_loop.hpp"

namespace ddpm {

constexpr std::size_t max_rank = 16;
constexpr std::int64_t copy_grain = 1 << 16;

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check(shape.size() <= max_rank, "empty", "rank ", shape.size(), " exceeds the maximum of ", max_rank);
  for (std::int64_t size : shape)
    check(size >= 0, "empty", "negative size in shape ", shape_string(shape));
  auto storage = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * element_size(dtype));
  Tensor tensor;
  tensor.storage_ = std::move(storage);
  tensor.shape_ = shape;
  tensor.strides_ = contiguous_strides(shape);
  tensor.dtype_ = dtype;
  return tensor;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  check(static_cast<std::int64_t>(values.size()) == shape_numel(shape), "from_vector", "got ",
        values.size(), " values for shape ", shape_string(shape));
  Tensor tensor = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(tensor.raw_data(), values.data(), values.size() * sizeof(T));
  return tensor;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<std::int64_t>&, const Shape&);

Tensor Tensor::scalar(double value, DType dtype) {
  Tensor tensor = empty({}, dtype);
  tensor.fill_(value);
  return tensor;
}

std::int64_t Tensor::size(std::int64_t axis) const {
  return shape_[normalize_axis(axis, rank(), "size")];
}

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() {
  check(defined(), "raw_data", "tensor is undefined");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<std::int64_t>(element_size(dtype_));
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

Tensor Tensor::make_view(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Strides strides,
                         std::int64_t offset) {
  check(storage != nullptr, "make_view", "no storage");
  check(shape.size() == strides.size(), "make_view", "shape ", shape_string(shape), " and strides ",
        shape_string(strides), " differ in rank");
  check(shape.size() <= max_rank, "make_view", "rank ", shape.size(), " exceeds the maximum of ", max_rank);
  // Every reachable element must lie inside the storage.
  std::int64_t low = offset, high = offset;
  bool empty_view = false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    check(shape[i] >= 0, "make_view", "negative size in shape ", shape_string(shape));
    if (shape[i] == 0) empty_view = true;
    const std::int64_t reach = (shape[i] - 1) * strides[i];
    (reach < 0 ? low : high) += reach;
  }
  const auto capacity = static_cast<std::int64_t>(storage->bytes() / element_size(dtype));
  check(empty_view || (low >= 0 && high < capacity), "make_view", "view with shape ", shape_string(shape),
        ", strides ", shape_string(strides), " and offset ", offset, " reaches outside a storage of ",
        capacity, " elements");
  Tensor tensor;
  tensor.storage_ = std::move(storage);
  tensor.shape_ = std::move(shape);
  tensor.strides_ = std::move(strides);
  tensor.offset_ = offset;
  tensor.dtype_ = dtype;
  return tensor;
}

namespace {
Shape infer_shape(const Shape& requested, std::int64_t numel, const Shape& original, const char* op) {
  Shape shape = requested;
  std::int64_t known = 1;
  int unknown_axis = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check(unknown_axis < 0, op, "only one size may be -1 in ", shape_string(requested));
      unknown_axis = static_cast<int>(i);
    } else {
      check(shape[i] >= 0, op, "invalid size in ", shape_string(requested));
      known *= shape[i];
    }
  }
  if (unknown_axis >= 0) {
    check(known != 0 && numel % known == 0, op, "cannot infer -1 in ", shape_string(requested),
          " for a tensor of shape ", shape_string(original));
    shape[unknown_axis] = numel / known;
  }
  check(shape_numel(shape) == numel, op, "shape ", shape_string(requested), " does not fit a tensor of shape ",
        shape_string(original), " (", numel, " elements)");
  return shape;
}
}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  check(defined(), "view", "tensor is undefined");
  Shape resolved = infer_shape(shape, numel(), shape_, "view");
  check(is_contiguous(), "view", "tensor of shape ", shape_string(shape_), " with strides ",
        shape_string(strides_), " is not contiguous; use reshape()");
  return make_view(storage_, dtype_, resolved, contiguous_strides(resolved), offset_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  if (is_contiguous()) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& order) const {
  check(static_cast<std::int64_t>(order.size()) == rank(), "permute", "order has ", order.size(),
        " axes but the tensor has rank ", rank());
  Shape shape(order.size());
  Strides strides(order.size());
  std::vector<bool> seen(order.size(), false);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::int64_t axis = normalize_axis(order[i], rank(), "permute");
    check(!seen[axis], "permute", "axis ", axis, " appears twice in the order");
    seen[axis] = true;
    shape[i] = shape_[axis];
    strides[i] = strides_[axis];
  }
  return make_view(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::transpose(std::int64_t axis_a, std::int64_t axis_b) const {
  std::vector<std::int64_t> order(rank());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(axis_a, rank(), "transpose")], order[normalize_axis(axis_b, rank(), "transpose")]);
  return permute(order);
}

Tensor Tensor::narrow(std::int64_t axis, std::int64_t start, std::int64_t length) const {
  axis = normalize_axis(axis, rank(), "narrow");
  check(start >= 0 && length >= 0 && start + length <= shape_[axis], "narrow", "range [", start, ", ",
        start + length, ") is outside axis ", axis, " of size ", shape_[axis]);
  Shape shape = shape_;
  shape[axis] = length;
  return make_view(storage_, dtype_, shape, strides_, offset_ + start * strides_[axis]);
}

Tensor Tensor::slice(std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) const {
  axis = normalize_axis(axis, rank(), "slice");
  check(step > 0, "slice", "step must be positive, got ", step);
  const std::int64_t size = shape_[axis];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<std::int64_t>(start, 0, size);
  end = std::clamp<std::int64_t>(end, start, size);
  Shape shape = shape_;
  Strides strides = strides_;
  shape[axis] = (end - start + step - 1) / step;
  strides[axis] *= step;
  return make_view(storage_, dtype_, shape, strides, offset_ + start * strides_[axis]);
}

Tensor Tensor::select(std::int64_t axis, std::int64_t index) const {
  axis = normalize_axis(axis, rank(), "select");
  check(index >= -shape_[axis] && index < shape_[axis], "select", "index ", index, " is out of range for axis ",
        axis, " of size ", shape_[axis]);
  if (index < 0) index += shape_[axis];
  return narrow(axis, index, 1).squeeze(axis);
}

Tensor Tensor::expand(const Shape& shape) const {
  check(shape.size() >= shape_.size(), "expand", "cannot expand shape ", shape_string(shape_), " to ",
        shape_string(shape));
  const std::size_t lead = shape.size() - shape_.size();
  Strides strides(shape.size(), 0);
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    const std::int64_t target = shape[lead + i];
    check(shape_[i] == target || shape_[i] == 1, "expand", "cannot expand shape ", shape_string(shape_), " to ",
          shape_string(shape));
    strides[lead + i] = shape_[i] == target ? strides_[i] : 0;
  }
  return make_view(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::squeeze(std::int64_t axis) const {
  axis = normalize_axis(axis, rank(), "squeeze");
  check(shape_[axis] == 1, "squeeze", "axis ", axis, " has size ", shape_[axis], ", not 1");
  Shape shape = shape_;
  Strides strides = strides_;
  shape.erase(shape.begin() + axis);
  strides.erase(strides.begin() + axis);
  return make_view(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::unsqueeze(std::int64_t axis) const {
  axis = normalize_axis(axis, rank() + 1, "unsqueeze");
  Shape shape = shape_;
  Strides strides = strides_;
  const std::int64_t stride = axis < rank() ? strides_[axis] * shape_[axis] : 1;
  shape.insert(shape.begin() + axis, 1);
  strides.insert(strides.begin() + axis, stride);
  return make_view(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::contiguous() const {
  check(defined(), "contiguous", "tensor is undefined");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check(defined(), "clone", "tensor is undefined");
  Tensor copy = empty(shape_, dtype_);
  copy.copy_(*this);
  return copy;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor converted = empty(shape_, dtype);
  converted.copy_(*this);
  return converted;
}

Tensor& Tensor::fill_(double value) {
  check(defined(), "fill_", "tensor is undefined");
  dispatch_all(dtype_, [&]<class T>() {
    const T typed = static_cast<T>(value);
    T* base = static_cast<T*>(storage_->data());
    parallel_for(numel(), copy_grain, [&](std::int64_t begin, std::int64_t end) {
      strided_for_each<1>(shape_, {&strides_}, begin, end,
                          [&](const std::array<std::int64_t, 1>& at) { base[offset_ + at[0]] = typed; });
    });
  });
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& source) {
  check(defined() && source.defined(), "copy_", "tensor is undefined");
  const Tensor from = source.expand(shape_);
  dispatch_all(dtype_, [&]<class Destination>() {
    dispatch_all(from.dtype_, [&]<class Source>() {
      Destination* destination = static_cast<Destination*>(storage_->data()) + offset_;
      const Source* origin = static_cast<const Source*>(from.storage_->data()) + from.offset_;
      if (is_contiguous() && from.is_contiguous()) {
        parallel_for(numel(), copy_grain, [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t i = begin; i < end; ++i) destination[i] = static_cast<Destination>(origin[i]);
        });
        return;
      }
      // Views that are contiguous along their last axes (a slice of channels, a batch with
      // its first two axes swapped) copy whole rows, which vectorise, rather than elements.
      Shape shape = shape_;
      std::array<Strides, 2> strides{strides_, from.strides_};
      coalesce_axes(shape, strides);
      constexpr std::int64_t shortest_row = 16;
      if (!use_reference_kernels() && !shape.empty() && strides[0].back() == 1 && strides[1].back() == 1 &&
          shape.back() >= shortest_row) {
        const std::int64_t row = shape.back(), rows = numel() / row;
        const Shape outer(shape.begin(), shape.end() - 1);
        const Strides to_row(strides[0].begin(), strides[0].end() - 1), from_row(strides[1].begin(), strides[1].end() - 1);
        parallel_for(rows, std::max<std::int64_t>(1, copy_grain / row), [&](std::int64_t begin, std::int64_t end) {
          strided_for_each<2>(outer, {&to_row, &from_row}, begin, end, [&](const std::array<std::int64_t, 2>& at) {
            Destination* to = destination + at[0];
            const Source* values = origin + at[1];
            for (std::int64_t i = 0; i < row; ++i) to[i] = static_cast<Destination>(values[i]);
          });
        });
        return;
      }
      parallel_for(numel(), copy_grain, [&](std::int64_t begin, std::int64_t end) {
        strided_for_each<2>(shape_, {&strides_, &from.strides_}, begin, end,
                            [&](const std::array<std::int64_t, 2>& at) {
                              destination[at[0]] = static_cast<Destination>(origin[at[1]]);
                            });
      });
    });
  });
  bump_version();
  return *this;
}

double Tensor::item() const {
  check(numel() == 1, "item", "tensor of shape ", shape_string(shape_), " has ", numel(),
        " elements, expected 1");
  return at(std::vector<std::int64_t>(shape_.size(), 0));
}

double Tensor::at(const std::vector<std::int64_t>& index) const {
  check(static_cast<std::int64_t>(index.size()) == rank(), "at", "index has ", index.size(),
        " coordinates for a tensor of rank ", rank());
  std::int64_t position = offset_;
  for (std::size_t i = 0; i < index.size(); ++i) {
    check(index[i] >= 0 && index[i] < shape_[i], "at", "index ", index[i], " is out of range for axis ", i,
          " of size ", shape_[i]);
    position += index[i] * strides_[i];
  }
  return dispatch_all(dtype_, [&]<class T>() {
    return static_cast<double>(static_cast<const T*>(storage_->data())[position]);
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  const Tensor typed = to(dtype_of<T>()).contiguous();
  const T* begin = typed.data<T>();
  return std::vector<T>(begin, begin + typed.numel());
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<std::int64_t> Tensor::to_vector() const;

}  // namespace ddpm
