#pragma once
// Element types. float32 is the working type; float64 serves references and gradient
// checks; int64 holds indices and labels.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/error.hpp"

namespace ddpm {

enum class DType : std::uint8_t { Float32, Float64, Int64 };

constexpr std::size_t element_size(DType dtype) {
  return dtype == DType::Float32 ? 4 : 8;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "unknown";
}

constexpr bool is_floating(DType dtype) { return dtype != DType::Int64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }

// Calls function.template operator()<T>() with T the C++ type of a floating dtype.
template <class Function>
decltype(auto) dispatch_floating(DType dtype, const char* op, Function&& function) {
  switch (dtype) {
    case DType::Float32: return function.template operator()<float>();
    case DType::Float64: return function.template operator()<double>();
    default: fail(op, "expected a floating dtype (float32 or float64), got ", dtype_name(dtype));
  }
}

// The same over all three dtypes.
template <class Function>
decltype(auto) dispatch_all(DType dtype, Function&& function) {
  switch (dtype) {
    case DType::Float32: return function.template operator()<float>();
    case DType::Float64: return function.template operator()<double>();
    case DType::Int64: return function.template operator()<std::int64_t>();
  }
  return function.template operator()<float>();
}

}  // namespace ddpm
