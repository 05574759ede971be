// Dropout, and GroupNorm -> SiLU -> dropout -> conv2d as one op: ops that recompute what
// their backward needs instead of keeping it. Memory, not arithmetic, is why: in a U-Net
// training step the normalised activations, the dropout masks and the dropped-out copies
// are about a third of everything saved for backward, and all of them are cheap to
// recompute from the block's input, the group statistics and the RNG counters.
#include "autograd/convolution_options.hpp"
#include "autograd/functions.hpp"
#include "tensor/convolution.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/group_norm.hpp"
#include "tensor/random.hpp"

namespace ddpm {

namespace {
// x times the inverted-dropout multipliers a generator in the state `before` draws, in place
// (x is a fresh tensor of the caller's): the same draw in forward and backward (a copy of
// the generator keeps the counters and the batch window), and no mask tensor is stored.
Tensor dropped_out(Tensor x, double probability, Generator before) {
  apply_dropout_(x, probability, before);
  return x;
}
}  // namespace

Variable dropout(const Variable& x, double probability, Generator& generator) {
  check(probability >= 0.0 && probability < 1.0, "dropout", "probability must be in [0, 1), got ", probability);
  if (probability == 0.0) return x;
  const Generator before = generator;
  Tensor output = x.value().clone();
  apply_dropout_(output, probability, generator);
  return Variable::from_op(output, "dropout", {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{dropped_out(g.clone(), probability, before)};
  });
}

Variable group_norm_silu_conv2d(const Variable& input, const NormalizationOptions& norm, const Variable& gamma,
                                const Variable& beta, double dropout_probability, Generator* dropout_generator,
                                const Variable& weight, const Variable& bias, const Convolution2dOptions& options,
                                const Variable& image_bias) {
  check(dropout_probability >= 0.0 && dropout_probability < 1.0, "group_norm_silu_conv2d",
        "dropout probability must be in [0, 1), got ", dropout_probability);
  check(dropout_probability == 0.0 || dropout_generator, "group_norm_silu_conv2d", "dropout needs a generator");
  const bool dropping = dropout_probability > 0.0;
  const bool has_bias = bias.defined(), has_image_bias = image_bias.defined();
  std::vector<Variable> inputs = {input, gamma, beta, weight};
  if (has_bias) inputs.push_back(bias);
  if (has_image_bias) inputs.push_back(image_bias);
  const Tensor bias_value = has_bias ? bias.value() : Tensor();
  const Tensor image_bias_value = has_image_bias ? image_bias.value() : Tensor();
  const std::int64_t groups = norm.groups;
  const double eps = norm.eps, p = dropout_probability;
  if (!Variable::records(inputs) && !dropping)
    return Variable(group_norm_silu_conv2d(input.value(), groups, gamma.value(), beta.value(), eps, weight.value(),
                                           bias_value, forward_options(options, weight), image_bias_value),
                    false);

  const Generator before = dropping ? *dropout_generator : Generator();
  // Forward: the normalised activation lives only until the convolution has read it.
  const GroupNormOutput normalized = group_norm(input.value(), groups, gamma.value(), beta.value(), eps, true);
  Tensor activation = normalized.output;
  if (dropping) {
    apply_dropout_(activation, p, *dropout_generator);
  }
  Tensor output = conv2d(activation, weight.value(), bias_value, forward_options(options, weight), image_bias_value);
  activation = Tensor();

  SavedTensor saved_input(input.value(), "group_norm_silu_conv2d"), saved_gamma(gamma.value(), "group_norm_silu_conv2d"),
      saved_beta(beta.value(), "group_norm_silu_conv2d"), saved_weight(weight.value(), "group_norm_silu_conv2d");
  const Tensor mean = normalized.mean, inverse_std = normalized.inverse_std;
  const bool need_input = input.requires_grad() || gamma.requires_grad() || beta.requires_grad();
  const bool need_weight = weight.requires_grad(), need_bias = has_bias && bias.requires_grad();
  const std::size_t image_bias_index = has_bias ? 5 : 4;
  const bool need_image_bias = has_image_bias && image_bias.requires_grad();
  return Variable::from_op(output, "group_norm_silu_conv2d", inputs, [=](const Tensor& g) {
    const Tensor& x = saved_input.get();
    const Tensor& w = saved_weight.get();
    // Recompute exactly what forward computed (the same kernels on the same inputs). The
    // activation (for the weight gradient) and its gradient (for the input's) take the same
    // dropout multipliers: one draw serves both.
    std::vector<Tensor> gradients(inputs.size());
    Tensor activation = need_weight ? group_norm(x, groups, saved_gamma.get(), saved_beta.get(), eps, true).output : Tensor();
    Tensor activation_gradient = need_input ? conv2d_input_gradient(g, w, x.shape(), options) : Tensor();
    if (dropping) {
      Generator draw = before;
      if (need_weight && need_input) apply_dropout_(activation, activation_gradient, p, draw);
      else if (need_weight) apply_dropout_(activation, p, draw);
      else if (need_input) apply_dropout_(activation_gradient, p, draw);
    }
    if (need_weight) gradients[3] = conv2d_weight_gradient(g, activation, w.shape(), options);
    activation = Tensor();
    if (need_bias) gradients[4] = sum(g, {0, 2, 3});
    if (need_image_bias) gradients[image_bias_index] = sum(g, {2, 3});
    if (need_input) {
      GroupNormGradients norm_gradients = group_norm_backward(activation_gradient, x, mean, inverse_std, groups,
                                                              saved_gamma.get(), saved_beta.get(), true);
      gradients[0] = std::move(norm_gradients.input);
      gradients[1] = std::move(norm_gradients.gamma);
      gradients[2] = std::move(norm_gradients.beta);
    }
    return gradients;
  });
}

}  // namespace ddpm
