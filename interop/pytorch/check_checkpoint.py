#!/usr/bin/python3
"""Loads a checkpoint written by `ddpm train` into ddpm_unet.UNet and checks that PyTorch
computes what ddpm.cpp computed on the same inputs (a file of tests/interop/forward_output):
every output value within 1e-4 (absolute and relative).

  /usr/bin/python3 interop/pytorch/check_checkpoint.py CHECKPOINT FORWARD_OUTPUT
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddpm_unet  # noqa: E402

TOLERANCE = 1e-4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, config, _ = ddpm_unet.load_checkpoint(sys.argv[1], ema=True)
    reference, _ = ddpm_unet.read_safetensors(sys.argv[2])
    with torch.no_grad():
        output = model(reference["input.x"], reference["input.t"], reference.get("input.y"))
    expected = reference["output"]
    if output.shape != expected.shape:
        sys.exit(f"output shape {list(output.shape)}, ddpm.cpp's {list(expected.shape)}")
    worst = ((output - expected).abs() / (TOLERANCE + TOLERANCE * expected.abs())).max().item()
    error = (output - expected).abs().max().item()
    print(f"{config.to_json()}: largest difference {error:.3g} over {expected.numel()} values "
          f"(scale {expected.abs().max().item():.3g})")
    if worst > 1:
        sys.exit("PyTorch's output differs from ddpm.cpp's by more than 1e-4")
    print("checkpoint round trip: PyTorch matches ddpm.cpp")


if __name__ == "__main__":
    main()
