"""Per-model table of the real-world model set (issue 15's closing note).

For every model of tests/models/realworld/manifest.json: does it load, float error against
onnxruntime (max |ours - ort| / max |ort|), 8-bit SQNR against float of our integer network and
of onnxruntime's quant_pre_process + quantize_static QDQ U8S8 on the same 32 calibration images
(per tensor and channel-wise), and SQNR of onnxruntime on our QDQ export against our integer
forward. Same stages, data and settings as tests/test_realworld_models.py.

Usage: python benchmarks/realworld_report.py [--models NAME ...] [--xfail-table]
--xfail-table also prints the LOAD_FAILURES and STAGE_FAILURES tables of the test file for the
current state (paste them over the old ones when features merge).
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models", "realworld"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import realworld_checks as rc  # noqa: E402


def attempt(fn, *args):
    """(value, None) or (None, short error)."""
    try:
        return fn(*args), None
    except Exception as exc:  # the report lists every failure, it does not stop at one
        return None, rc.failure_text(exc)


def fmt(value, spec):
    return "-".rjust(int(spec.split(".")[0])) if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(rc.MODELS), choices=list(rc.MODELS))
    parser.add_argument("--xfail-table", action="store_true")
    args = parser.parse_args()

    header = (f"{'model':26s} {'load':4s} {'float err':>9s} | {'tensor ours':>11s} {'ort':>6s} | "
              f"{'channel ours':>12s} {'ort':>6s} | {'export t':>8s} {'export c':>8s}")
    print(header)
    print("-" * len(header))
    notes, expected = [], {}
    for name in args.models:
        _, load_error = attempt(rc.loaded, name)
        float_fig, float_error = attempt(rc.float_figures, name)
        row = {}
        for mode in rc.MODES:
            row[mode, "ours"], e1 = attempt(rc.our_quantized_sqnr, name, mode)
            row[mode, "ort"], e2 = attempt(rc.ort_quantized_sqnr, name, mode)
            row[mode, "export"], e3 = attempt(rc.export_sqnr, name, mode)
            for what, e in (("ours", e1), ("onnxruntime", e2), ("export", e3)):
                if e and e != load_error:
                    notes.append(f"{name} {mode} {what}: {e}")
        err = float_fig["float_error"] if float_fig else None
        print(f"{name:26s} {'yes' if load_error is None else 'NO':4s} {fmt(err, '9.1e')} | "
              f"{fmt(row['per_tensor', 'ours'], '11.1f')} {fmt(row['per_tensor', 'ort'], '6.1f')} | "
              f"{fmt(row['channel_wise', 'ours'], '12.1f')} {fmt(row['channel_wise', 'ort'], '6.1f')} | "
              f"{fmt(row['per_tensor', 'export'], '8.1f')} {fmt(row['channel_wise', 'export'], '8.1f')}", flush=True)
        if load_error:
            notes.append(f"{name} load: {load_error}")
        elif float_error:
            notes.append(f"{name} float: {float_error}")
        if args.xfail_table:
            for stage in rc.STAGES:
                _, e = attempt(rc.run_stage, name, stage)
                if e:
                    expected[name, stage] = e
    print("\nSQNR in dB against the float output (32 evaluation images); export: onnxruntime on our QDQ "
          "file against our integer forward. '-': the stage fails, see below.")
    for note in notes:
        print("  " + note)
    if args.xfail_table:
        load_failures = {n: t for (n, stage), t in expected.items() if stage == "load"}
        print("\nLOAD_FAILURES = {")
        for name, text in load_failures.items():
            print(f"    {name!r}:\n        {text!r},")
        print("}\nSTAGE_FAILURES = {")
        for (name, stage), text in expected.items():
            if stage != "load" and text != load_failures.get(name):
                print(f"    ({name!r}, {stage!r}):\n        {text!r},")
        print("}")


if __name__ == "__main__":
    main()
