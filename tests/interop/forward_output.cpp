// Writes what a checkpoint's model computes on fixed inputs, for the PyTorch side to
// compare (interop/pytorch/check_checkpoint.py): the round trip of tests/interop/
// round_trip.sh. The inputs need no random generator, so Python rebuilds nothing:
// it reads them from the same file.
//
//   forward_output CHECKPOINT OUT.safetensors
// OUT: input.x [3, C, H, W], input.t [3], input.y [3] (when conditional), output (EMA weights).
#include <cmath>
#include <cstdio>
#include <exception>

#include "tensor/factory.hpp"
#include "tools/checkpoint.hpp"

int main(int argc, char** argv) {
  using namespace ddpm;
  if (argc != 3) {
    std::fprintf(stderr, "usage: forward_output CHECKPOINT OUT.safetensors\n");
    return 2;
  }
  try {
    const tools::Checkpoint checkpoint = tools::Checkpoint::read(argv[1]);
    const nn::UNetConfig config = checkpoint.config();
    Generator init(0), unused(0);
    nn::UNet model(config, init);
    checkpoint.load_into(model, /*ema=*/true);
    model.eval();
    constexpr std::int64_t batch = 3;
    Tensor x = zeros({batch, config.in_channels, config.image_size, config.image_size});
    float* values = x.data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) values[i] = static_cast<float>(0.9 * std::sin(0.37 * static_cast<double>(i)));
    const std::int64_t last = checkpoint.run().settings.timesteps - 1;
    const Tensor t = Tensor::from_vector(std::vector<std::int64_t>{0, last / 2, last}, {batch});
    std::vector<std::pair<std::string, Tensor>> tensors = {{"input.x", x}, {"input.t", t}};
    Tensor y;
    if (config.num_classes > 0) {  // a class, the null label, another class
      y = Tensor::from_vector(std::vector<std::int64_t>{0, config.num_classes, 1 % config.num_classes}, {batch});
      tensors.emplace_back("input.y", y);
    }
    NoGrad no_grad;
    tensors.emplace_back("output", model.forward(Variable(x), t, y, unused).value());
    write_safetensors(argv[2], tensors, {});
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "forward_output: %s\n", error.what());
    return 1;
  }
}
