#include "tensor/print.hpp"

#include <ostream>
#include <sstream>

namespace ddpm {
namespace {
void print_axis(std::ostringstream& out, const Tensor& tensor, std::vector<std::int64_t>& index, std::size_t axis,
                std::int64_t edge_items) {
  if (axis == index.size()) {
    out << tensor.at(index);
    return;
  }
  const std::int64_t size = tensor.shape()[axis];
  out << '[';
  for (std::int64_t i = 0; i < size; ++i) {
    if (size > 2 * edge_items && i == edge_items) {
      out << "..., ";
      i = size - edge_items;
    }
    index[axis] = i;
    print_axis(out, tensor, index, axis + 1, edge_items);
    if (i + 1 < size) out << ", ";
  }
  out << ']';
}
}  // namespace

std::string to_string(const Tensor& tensor, std::int64_t edge_items) {
  if (!tensor.defined()) return "tensor(undefined)";
  std::ostringstream out;
  out.precision(6);
  out << "tensor(";
  std::vector<std::int64_t> index(tensor.shape().size(), 0);
  if (tensor.numel() == 0) out << "[]";
  else print_axis(out, tensor, index, 0, edge_items);
  out << ", shape=" << shape_string(tensor.shape()) << ", dtype=" << dtype_name(tensor.dtype()) << ')';
  return out.str();
}

std::ostream& operator<<(std::ostream& stream, const Tensor& tensor) { return stream << to_string(tensor); }

}  // namespace ddpm
