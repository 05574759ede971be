#include "ddpm/conditioning.hpp"

#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

namespace ddpm::diffusion {

Tensor drop_labels(const Tensor& labels, double probability, std::int64_t null_label, std::uint64_t seed,
                   std::uint64_t first_counter) {
  check(labels.dtype() == DType::Int64 && labels.rank() == 1, "drop_labels", "labels must be int64 [B], got ",
        dtype_name(labels.dtype()), " ", shape_string(labels.shape()));
  check(probability >= 0 && probability <= 1, "drop_labels", "probability must be in [0, 1], got ", probability);
  std::vector<std::int64_t> values = labels.to_vector<std::int64_t>();
  for (std::size_t b = 0; b < values.size(); ++b)
    if (uniform_at(seed, 0, first_counter + b) < probability) values[b] = null_label;
  return Tensor::from_vector(values, labels.shape());
}

Tensor guided_epsilon(const Tensor& conditional, const Tensor& unconditional, double guidance) {
  check(conditional.shape() == unconditional.shape(), "guided_epsilon", "conditional ", shape_string(conditional.shape()),
        " and unconditional ", shape_string(unconditional.shape()), " differ");
  return sub(mul(conditional, 1.0 + guidance), mul(unconditional, guidance));
}

}  // namespace ddpm::diffusion
