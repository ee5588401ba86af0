"""The .pyi stub of the compiled module lists every public name (regenerate: tools/make_stubs.sh)."""
import os

import aidge_ptq_lite
from aidge_ptq_lite import _core


def test_stub_covers_the_compiled_module():
    stub = open(os.path.join(os.path.dirname(aidge_ptq_lite.__file__), "_core.pyi")).read()
    public = [name for name in dir(_core) if not name.startswith("_")]
    missing = [name for name in public if f"def {name}(" not in stub and f"class {name}(" not in stub
               and f"class {name}:" not in stub]
    assert not missing, f"stale _core.pyi, missing {missing}: run tools/make_stubs.sh"


def test_every_binding_has_a_docstring():
    undocumented = [name for name in dir(_core) if not name.startswith("_")
                    and not (getattr(_core, name).__doc__ or "").strip()]
    assert not undocumented, undocumented
