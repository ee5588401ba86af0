"""No behaviour change: the quantized zoo networks (integer outputs and every step, clamp,
multiplier and integer parameter) are bit-identical to the digests recorded before the
op-registry / typed-plan refactor (tools/make_plan_digests.py, tests/plan_digest.py)."""
import json
import os

import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import zoo
from plan_digest import CONFIGS, digest

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "plan_digests.json")


@pytest.fixture(scope="module")
def recorded():
    with open(FIXTURE) as f:
        by_level = json.load(f)
    level = apl.simd_level()
    if level == "amx" and level not in by_level:
        level = "avx512"  # its float calibration kernels are AVX512's; integers match every level
    if level not in by_level:
        pytest.skip(f"no digests recorded for SIMD level {level} (recorded: {', '.join(by_level)})")
    return by_level[level]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("model", zoo.ZOO_MODELS)
def test_quantized_network_is_bit_identical_to_the_recorded_one(recorded, model, config):
    expected = recorded[f"{model}/{config}"]
    got = digest(model, config)
    changed = [name for name in expected["nodes"] if got["nodes"].get(name) != expected["nodes"][name]]
    added = sorted(set(got["nodes"]) - set(expected["nodes"]))
    assert not changed and not added, f"plan differs at nodes {changed[:8]}, new nodes {added[:8]}"
    assert got["codes"] == expected["codes"], "integer outputs differ"
    assert got["values"] == expected["values"], "dequantized outputs differ"
