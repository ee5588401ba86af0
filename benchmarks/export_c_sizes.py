"""Sizes of the C export per zoo model: weights / arena / naive activation bytes from export_c,
and text / rodata / bss of the network (network.c, network_weights.c, apl_kernels.c) built for a
Cortex-M4 (arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb), when that toolchain is installed.

    python benchmarks/export_c_sizes.py [--nb-bits 8] [--single-shift] [--channel-wise]
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo


def section_sizes(objects):
    out = subprocess.run(["arm-none-eabi-size", "-A", *objects], capture_output=True, text=True, check=True).stdout
    total = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for name, size in re.findall(r"^\.(\w+)\S*\s+(\d+)", out, flags=re.M):
        if name in total:
            total[name] += int(size)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb-bits", type=int, default=8)
    ap.add_argument("--single-shift", action="store_true")
    ap.add_argument("--channel-wise", action="store_true")
    args = ap.parse_args()
    x_calib = datasets.load_calibration_set(128, data_dir="bundled")
    cortex = shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-size")
    print(f"{'model':10} {'weights':>9} {'arena':>8} {'naive':>8} {'bound':>8}"
          + (f" {'M4 text':>8} {'rodata':>8} {'bss':>8}" if cortex else ""))
    for model in zoo.ZOO_MODELS:
        g = apl.load_onnx(zoo.model_path(model))
        apl.quantize_network(g, x_calib, nb_bits=args.nb_bits, single_shift=args.single_shift,
                             channel_wise=args.channel_wise)
        with tempfile.TemporaryDirectory() as d:
            info = apl.export_c(g, d)
            line = (f"{model:10} {info['weights_bytes']:>9,} {info['arena_bytes']:>8,} "
                    f"{info['naive_activation_bytes']:>8,} {info['arena_lower_bound']:>8,}")
            if cortex:
                objects = []
                for src in ("network.c", "network_weights.c", "apl_kernels.c"):
                    obj = os.path.join(d, src[:-2] + ".o")
                    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb",
                                    "-c", "-o", obj, os.path.join(d, src)], check=True)
                    objects.append(obj)
                s = section_sizes(objects)
                line += f" {s['text']:>8,} {s['rodata']:>8,} {s['bss']:>8,}"
            print(line)
    if not cortex:
        print("(arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi for the Cortex-M4 sizes)")


if __name__ == "__main__":
    main()
