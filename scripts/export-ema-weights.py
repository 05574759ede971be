#!/usr/bin/python3
"""Writes the EMA weights of a `ddpm train` checkpoint alone (no raw weights, no optimizer
state), as models/fashion-mnist-ch32.safetensors is made: a third of the size, and all that
sampling and evaluation read. The tensors keep their names ("ema." + PyTorch's name) and the
metadata its fields; "weights" records what was removed. Python's standard library only.

  /usr/bin/python3 scripts/export-ema-weights.py CHECKPOINT OUT
"""
import json
import os
import struct
import sys


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    kept = sorted((name for name in header if name.startswith("ema.")), key=lambda n: header[n]["data_offsets"][0])
    if not kept:
        sys.exit(f"{source}: has no EMA weights (tensors named ema.*)")
    out_header, chunks, offset = {}, [], 0
    for name in kept:
        begin, end = header[name]["data_offsets"]
        out_header[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"], "data_offsets": [offset, offset + end - begin]}
        chunks.append(data[begin:end])
        offset += end - begin
    metadata["weights"] = "EMA only: raw weights and optimizer state removed"
    metadata.pop("optim", None)
    metadata.pop("optim.step", None)
    out_header["__metadata__"] = metadata
    encoded = json.dumps(out_header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    temporary = target + ".partial"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)
    os.replace(temporary, target)
    print(f"wrote {len(kept)} EMA tensors ({offset / 2**20:.1f} MiB) to {target}")


if __name__ == "__main__":
    main()
