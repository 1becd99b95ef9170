"""One manifest shape: a real capture's manifest, the test factory's and the schema agree. The
schema requires every field a real bundle has, so a hand-made manifest that leaves one out (as the
factory once left out the chain factors' ``matches``) fails validation instead of being read by
fallbacks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bundle.capture.request import make_request
from bundle.pipeline import execute
from bundle.store.schema import validate_manifest
from bundle_factory import make_bundle
from test_capture import make_repo

# Where each fixed-shape object sits (maps keyed by engine, variable or step names are open).
SECTIONS = {
    "": lambda m: m,
    "spec": lambda m: m["spec"],
    "target": lambda m: m["target"],
    "arguments": lambda m: m["arguments"],
    "engines[0]": lambda m: m["engines"][0],
    "environment": lambda m: m["environment"],
    "commands[0]": lambda m: m["commands"][0],
    "result": lambda m: m["result"],
    "result.chain": lambda m: m["result"]["chain"],
    "result.chain.factors[0]": lambda m: m["result"]["chain"]["factors"][0],
    "result.chain.consistency.c": lambda m: m["result"]["chain"]["consistency"]["c"],
}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("real")
    repo = make_repo(root)
    outcome = execute(make_request(repo / "spec.toml", repo=repo, bundles=root / "b"))
    return json.loads((Path(outcome.summary["bundle"]) / "manifest.json").read_text())


@pytest.fixture(scope="module")
def factory(tmp_path_factory) -> dict:
    return json.loads((make_bundle(tmp_path_factory.mktemp("f")) / "manifest.json").read_text())


def test_a_real_capture_and_the_factory_write_the_same_fields(real, factory):
    assert validate_manifest(real) == [] and validate_manifest(factory) == []
    for name, at in SECTIONS.items():
        assert set(at(factory)) == set(at(real)), name


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_field_a_real_bundle_has_is_required(real, section):
    engines = set(real["result"]["engines"].values())
    for key in SECTIONS[section](real):
        if section.startswith("result.chain.factors") and key in engines:
            continue  # each engine's value is keyed by the engine's name: an open map
        broken = copy.deepcopy(real)
        del SECTIONS[section](broken)[key]
        assert validate_manifest(broken), f"{section}.{key} may be left out"


def test_a_factor_without_matches_is_refused(factory):
    broken = copy.deepcopy(factory)
    del broken["result"]["chain"]["factors"][2]["matches"]
    assert any("matches" in p for p in validate_manifest(broken))
