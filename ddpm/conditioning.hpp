#pragma once
// Class conditioning for classifier-free guidance (Ho & Salimans 2022): train with the
// label replaced by the null label at random, sample with (1 + w) ε(x, y) - w ε(x, ∅).
#include <cstdint>

#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// labels int64 [B]: each one becomes `null_label` with `probability`, decided by the
// counter-based uniform (seed, first_counter + b): the same draw for any batch split or
// thread count. Returns a new tensor.
Tensor drop_labels(const Tensor& labels, double probability, std::int64_t null_label, std::uint64_t seed,
                   std::uint64_t first_counter);

// (1 + w) conditional - w unconditional, for epsilon predictions of one shape.
Tensor guided_epsilon(const Tensor& conditional, const Tensor& unconditional, double guidance);

}  // namespace ddpm::diffusion
