#pragma once
// Tensor: an n-dimensional strided view of a Storage. Copying a Tensor copies the handle,
// not the data (like torch.Tensor). Views (reshape of contiguous data, permute, narrow,
// expand, ...) share storage; contiguous() and clone() copy.
#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/dtype.hpp"
#include "tensor/shape.hpp"
#include "tensor/storage.hpp"

namespace ddpm {

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  // Copies `values` into a new contiguous tensor of `shape` (numel must match).
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor scalar(double value, DType dtype = DType::Float32);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  std::int64_t rank() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;

  // Pointer to the first element (storage base + offset). Checks that T matches dtype().
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  // ---- views: share storage ----
  Tensor view(const Shape& shape) const;     // needs contiguous data; one size may be -1
  Tensor reshape(const Shape& shape) const;  // a view when contiguous, a copy otherwise
  Tensor permute(const std::vector<std::int64_t>& order) const;
  Tensor transpose(std::int64_t axis_a, std::int64_t axis_b) const;
  Tensor narrow(std::int64_t axis, std::int64_t start, std::int64_t length) const;
  Tensor slice(std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor select(std::int64_t axis, std::int64_t index) const;  // drops the axis
  Tensor expand(const Shape& shape) const;  // broadcast size-1 (or missing leading) axes
  Tensor squeeze(std::int64_t axis) const;
  Tensor unsqueeze(std::int64_t axis) const;
  Tensor flatten() const { return reshape({numel()}); }

  // ---- copies ----
  Tensor contiguous() const;  // returns *this when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;

  // ---- in-place (bump the storage version) ----
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& source);  // source broadcast to this shape
  Tensor& zero_() { return fill_(0.0); }

  // ---- element access (slow; for tests, printing and scalars) ----
  double item() const;  // numel must be 1
  double at(const std::vector<std::int64_t>& index) const;
  template <class T> std::vector<T> to_vector() const;

  bool shares_storage_with(const Tensor& other) const { return storage_ && storage_ == other.storage_; }
  std::uint64_t version() const { return storage_ ? storage_->version() : 0; }
  void bump_version() { if (storage_) storage_->bump_version(); }

  // Builds a view from parts; validates that every element lies inside the storage.
  static Tensor make_view(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Strides strides,
                          std::int64_t offset);
  const std::shared_ptr<Storage>& storage() const { return storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  std::int64_t offset_ = 0;
  DType dtype_ = DType::Float32;
};

// ---- template definitions ----
template <class T>
T* Tensor::data() {
  check(defined(), "data", "tensor is undefined");
  check(dtype_of<T>() == dtype_, "data", "requested ", dtype_name(dtype_of<T>()), " but tensor is ",
        dtype_name(dtype_));
  return static_cast<T*>(storage_->data()) + offset_;
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

}  // namespace ddpm
