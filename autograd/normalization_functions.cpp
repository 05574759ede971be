// GroupNorm (+ fused SiLU), attention and nearest upsampling: fused kernels whose
// backward is its own kernel in tensor/.
#include "autograd/functions.hpp"
#include "tensor/attention.hpp"
#include "tensor/group_norm.hpp"

namespace ddpm {

Variable group_norm(const Variable& input, std::int64_t groups, const Variable& gamma, const Variable& beta,
                    double eps, bool apply_silu) {
  GroupNormOutput forward = group_norm(input.value(), groups, gamma.value(), beta.value(), eps, apply_silu);
  SavedTensor saved_input(input.value(), "group_norm"), saved_gamma(gamma.value(), "group_norm"),
      saved_beta(beta.value(), "group_norm");
  const Tensor mean = forward.mean, inverse_std = forward.inverse_std;
  return Variable::from_op(forward.output, apply_silu ? "group_norm_silu" : "group_norm", {input, gamma, beta},
                           [=](const Tensor& g) {
    GroupNormGradients gradients = group_norm_backward(g, saved_input.get(), mean, inverse_std, groups,
                                                       saved_gamma.get(), saved_beta.get(), apply_silu);
    return std::vector<Tensor>{gradients.input, gradients.gamma, gradients.beta};
  });
}

Variable attention(const Variable& query, const Variable& key, const Variable& value, double scale) {
  SavedTensor q(query.value(), "attention"), k(key.value(), "attention"), v(value.value(), "attention");
  return Variable::from_op(attention(query.value(), key.value(), value.value(), scale), "attention",
                           {query, key, value}, [=](const Tensor& g) {
    AttentionGradients gradients = attention_backward(g, q.get(), k.get(), v.get(), scale);
    return std::vector<Tensor>{gradients.query, gradients.key, gradients.value};
  });
}

Variable upsample_nearest2x(const Variable& input) {
  return Variable::from_op(upsample_nearest2x(input.value()), "upsample_nearest2x", {input}, [](const Tensor& g) {
    return std::vector<Tensor>{upsample_nearest2x_backward(g)};
  });
}

}  // namespace ddpm
