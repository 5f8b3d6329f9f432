"""Shared fixtures: every test gets its own HUB_HOME; real tiny bases and PEFT
adapters are built once per session (offline, seeded) and reused read-only."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

# One fake Hub server per session (hub_server, hub_online), shared by every module.
pytest_plugins = ["tests.hubserver.fixture"]

# Keep the real huggingface_hub client away from the network in every test;
# sync tests point HF_ENDPOINT at their local server explicitly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="peft")


# Two tiers. tests/unit/: pure parts (parsers, compat rules on hand-built specs, maths on small
# tensors), no model, process or server, `pytest -m "not slow"` in well under a minute. Every other
# test file is the integration tier, marked `slow` here rather than in each file.
UNIT = Path(__file__).resolve().parent / "unit"
SLOW_FIXTURES = {"artifacts", "hub_server", "hub_online"}   # real models, a server


def pytest_ignore_collect(collection_path, config):
    # under -m "not slow", files outside tests/unit/ hold only slow tests: skip importing them
    if config.getoption("markexpr", "").strip() == "not slow" and collection_path.suffix == ".py" \
            and collection_path.name.startswith("test_") and UNIT not in collection_path.parents:
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if UNIT in Path(str(item.fspath)).parents:
            heavy = SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            if heavy:
                raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(heavy)}: "
                                        "move it out of tests/unit/")
        else:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hub-home"
    monkeypatch.setenv("HUB_HOME", str(home))
    if not os.environ.get("HUB_TEST_DATABASE_URL"):
        monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    return home


class Artifacts:
    """Lazily built, cached per session: base folders and adapter folders by kind."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, tuple[Path, Path]] = {}
        self._bases: dict[tuple, Path] = {}

    def __getitem__(self, kind: str) -> tuple[Path, Path]:
        """(base folder, adapter folder) for a kind in hub.demo.factory.ADAPTER_KINDS."""
        if kind not in self._cache:
            from hub.demo.factory import ADAPTER_KINDS, make_adapter

            base_kind, kwargs = ADAPTER_KINDS[kind]
            base = self.base(base_kind)
            # the seed follows the kind, not the order tests ask in: snapshots show sha256s
            seed = list(ADAPTER_KINDS).index(kind) + 1
            adapter = make_adapter(base, self.root / f"adapter-{kind}", seed=seed, **kwargs)
            self._cache[kind] = (base, adapter)
        return self._cache[kind]

    def base(self, kind: str, **overrides) -> Path:
        """A base folder of ``kind`` with config overrides (e.g. hidden_size=96)."""
        key = (kind, tuple(sorted(overrides.items())))
        if key not in self._bases:
            from hub.demo.factory import make_base

            suffix = "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
            self._bases[key] = make_base(kind, self.root / f"base-{kind}{'-' + suffix if suffix else ''}", **overrides)
        return self._bases[key]

    def adapter(self, base_kind: str, name: str, seed: int = 0, base_overrides: dict | None = None, **lora) -> Path:
        """A custom adapter (cached by name) on a base of ``base_kind``."""
        key = f"custom-{name}"
        if key not in self._cache:
            from hub.demo.factory import make_adapter

            base = self.base(base_kind, **(base_overrides or {}))
            self._cache[key] = (base, make_adapter(base, self.root / f"adapter-{name}", seed=seed, **lora))
        return self._cache[key][1]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    return Artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def bnb_reference() -> list[str]:
    """bitsandbytes as the oracle, computing as its reference does on every host (tests/bnb_reference.py);
    names what was replaced on this one."""
    pytest.importorskip("bitsandbytes")
    from tests.bnb_reference import pin_reference

    return pin_reference()
