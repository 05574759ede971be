#pragma once
// Every user-facing check throws TensorError with the op's name first, so a message
// reads "matmul: inner dimensions differ: [2, 3] x [4, 5]".
#include <sstream>
#include <stdexcept>
#include <string>

namespace ddpm {

class TensorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}
}  // namespace detail

// check(condition, "op", "what went wrong: ", value, ...)
template <class... Parts>
void check(bool condition, const char* op, const Parts&... parts) {
  if (!condition) throw TensorError(detail::concat(op, ": ", parts...));
}

template <class... Parts>
[[noreturn]] void fail(const char* op, const Parts&... parts) {
  throw TensorError(detail::concat(op, ": ", parts...));
}

}  // namespace ddpm
