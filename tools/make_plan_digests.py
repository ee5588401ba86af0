"""Write tests/fixtures/plan_digests.json: the digests of tests/plan_digest.py for every zoo model,
configuration and SIMD level this CPU has. Run it before a refactor that must not change
behaviour; tests/test_plan_digest.py then holds the code to it.

    python tools/make_plan_digests.py
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import zoo  # noqa: E402
from plan_digest import CONFIGS, digest  # noqa: E402

LEVELS = ("scalar", "avx2", "avx512", "amx")


def main():
    detected = LEVELS.index(apl.detected_simd_level())
    out = {}
    for level in LEVELS[:detected + 1]:
        apl.set_simd_level(level)
        out[level] = {f"{m}/{c}": digest(m, c) for m in zoo.ZOO_MODELS for c in CONFIGS}
        print(f"{level}: {len(out[level])} digests", file=sys.stderr)
    apl.set_simd_level(apl.detected_simd_level())
    path = os.path.join(ROOT, "tests", "fixtures", "plan_digests.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
