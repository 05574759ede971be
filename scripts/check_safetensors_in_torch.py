#!/usr/bin/python3
"""Loads a safetensors file written by ddpm.cpp into PyTorch tensors and prints them.

  /usr/bin/python3 scripts/check_safetensors_in_torch.py FILE

PyTorch 1.13 (Debian) ships no safetensors package, so this reads the format by its
specification: u64 little-endian header length, JSON header, raw little-endian data.
Exits non-zero if any tensor's bytes do not match its dtype and shape.
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def load(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors, metadata


def main():
    tensors, metadata = load(sys.argv[1])
    print("metadata", metadata)
    for name, tensor in tensors.items():
        print(f"{name}\t{tensor.dtype}\t{list(tensor.shape)}\tsum={tensor.double().sum().item():.6g}")


if __name__ == "__main__":
    main()
