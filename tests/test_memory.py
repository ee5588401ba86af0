"""Bounded memory: calibration is streamed, so the peak RSS of quantize_network does not grow with
the number of calibration images (1,000 vs 10,000, each measured in a fresh process by
benchmarks/bench_memory.py)."""
import os
import sys

import pytest

from aidge_ptq_lite import zoo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import bench_memory  # noqa: E402


def test_peak_rss_does_not_grow_with_the_calibration_set():
    """Peak RSS with 10,000 images is within 20% of that with 1,000 (the issue's criterion), and
    so is quantize_network's own growth above the RSS it started from (what the library adds)."""
    path = zoo.model_path("lenet")
    if not os.path.isfile(path):
        pytest.skip(f"zoo model lenet is not there yet ({path})")
    small, large = (bench_memory.measure(path, n) for n in (1000, 10000))
    mib = 1024.0
    figures = (f"peak {small['peak_kib'] / mib:.1f} MiB (1,000 images) vs "
               f"{large['peak_kib'] / mib:.1f} MiB (10,000 images)")
    print(figures)
    assert large["peak_kib"] <= 1.2 * small["peak_kib"], figures
    assert small["peak_kib"] <= 1.2 * large["peak_kib"], figures
    growth_small = small["peak_kib"] - small["rss_before_kib"]
    growth_large = large["peak_kib"] - large["rss_before_kib"]
    # 8 MiB of slack for allocator noise (seen: +5 MiB in a fresh install); holding 9,000 more
    # images as float32 would cost 27 MiB, and their activations hundreds.
    assert growth_large <= 1.2 * growth_small + 8 * mib, (growth_small, growth_large)
