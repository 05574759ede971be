// conv2d: the input and weight gradients are the two other GEMM-based kernels of
// tensor/convolution; the bias gradient is the output gradient summed over N, H, W.
#include "autograd/convolution_options.hpp"
#include "autograd/functions.hpp"
#include "tensor/convolution.hpp"

namespace ddpm {

Variable conv2d(const Variable& input, const Variable& weight, const Variable& bias, const Convolution2dOptions& options) {
  const bool has_bias = bias.defined();
  SavedTensor saved_input(input.value(), "conv2d"), saved_weight(weight.value(), "conv2d");
  const bool need_input = input.requires_grad(), need_weight = weight.requires_grad();
  const bool need_bias = has_bias && bias.requires_grad();
  Tensor output = conv2d(input.value(), weight.value(), has_bias ? bias.value() : Tensor(), forward_options(options, weight));
  std::vector<Variable> inputs = {input, weight};
  if (has_bias) inputs.push_back(bias);
  return Variable::from_op(output, "conv2d", inputs, [=](const Tensor& g) {
    const Tensor& x = saved_input.get();
    const Tensor& w = saved_weight.get();
    std::vector<Tensor> gradients = {
        need_input ? conv2d_input_gradient(g, w, x.shape(), options) : Tensor(),
        need_weight ? conv2d_weight_gradient(g, x, w.shape(), options) : Tensor()};
    if (has_bias) gradients.push_back(need_bias ? sum(g, {0, 2, 3}) : Tensor());
    return gradients;
  });
}

Variable upsample_nearest2x_conv2d(const Variable& input, const Variable& weight, const Variable& bias,
                                   const Convolution2dOptions& options) {
  const bool has_bias = bias.defined();
  if (Variable::records({input, weight, bias})) return conv2d(upsample_nearest2x(input), weight, bias, options);
  return Variable(upsample_nearest2x_conv2d(input.value(), weight.value(), has_bias ? bias.value() : Tensor(),
                                            forward_options(options, weight)),
                  false);
}

}  // namespace ddpm
