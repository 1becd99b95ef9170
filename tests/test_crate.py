"""ro-crate-metadata.json: Process Run Crate 0.5 shape, validated offline with roc-validator.

The validator fetches the RO-Crate JSON-LD context from w3id.org; this machine has no internet.
``bundle.present.crate.validate_crate`` seeds roc-validator's own HTTP cache (requests-cache, SQLite) with
the context file that ships inside the ``rocrate`` package and runs the validator with
``offline=True``, so every remote lookup is answered from that cache or fails as a cache miss.
The negative tests below show that the check really runs: a crate missing a REQUIRED property
fails, and without the seeded context the validator reports the context as unreachable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from capture_fixtures import CONTAINER, bundle_files_for, divergent_result, partial_result

from bundle.present.crate import (COMPLETED, FAILED, PROCESS_RUN_CRATE, crate_metadata, iso_time,
                          validate_crate, write_crate)
from bundle.model.records import CaptureResult, FileDigest
from bundle.present.report import report_markdown


def make_bundle(root: Path, result: CaptureResult) -> tuple[CaptureResult, list[FileDigest]]:
    """Write a plausible bundle for ``result`` and return (result, its file digests). The C
    engine's image in the bundle is the very file run-c wrote (same digest)."""
    files = []
    for rel in bundle_files_for(result):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if rel == "report.md":
            p.write_text(report_markdown(result, {}))
        else:
            p.write_bytes(f"contents of {rel}\n".encode())
        data = p.read_bytes()
        files.append(FileDigest(rel, len(data), hashlib.sha256(data).hexdigest()))
    image = next((f for f in files if f.path == "images/c.bin"), None)
    if image is not None:
        cmds = list(result.commands)
        run_c = cmds[1]
        outs = tuple(FileDigest("img.bin", image.size, image.sha256, "scratch:c")
                     if o.path == "img.bin" else o for o in run_c.outputs)
        cmds[1] = dataclasses.replace(run_c, outputs=outs)
        result = dataclasses.replace(result, commands=tuple(cmds))
    return result, files


def graph(md: dict) -> dict[str, dict]:
    return {e["@id"]: e for e in md["@graph"]}


def ids(value) -> list[str]:
    if value is None:
        return []
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rocv-cache") / "http_cache"


@pytest.fixture(scope="module")
def complete_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-complete")
    result, files = make_bundle(root, divergent_result(container=True))
    md = crate_metadata(result, files)
    write_crate(root, md)
    return root, result, files, md


@pytest.fixture(scope="module")
def partial_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-partial")
    result, files = make_bundle(root, partial_result())
    md = crate_metadata(result, files)
    write_crate(root, md)
    return root, result, files, md


def test_complete_crate_validates_at_required(complete_bundle, cache_path):
    root = complete_bundle[0]
    assert validate_crate(root, cache_path, severity="REQUIRED") == []


def test_partial_crate_validates_at_required(partial_bundle, cache_path):
    assert validate_crate(partial_bundle[0], cache_path, severity="REQUIRED") == []


def test_crate_shape(complete_bundle):
    _root, result, files, md = complete_bundle
    assert md["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    g = graph(md)
    assert ids(g["ro-crate-metadata.json"]["conformsTo"]) == ["https://w3id.org/ro/crate/1.1"]
    root = g["./"]
    assert ids(root["conformsTo"]) == [PROCESS_RUN_CRATE]
    assert g[PROCESS_RUN_CRATE]["@type"] == "CreativeWork"
    assert root["datePublished"] == "2026-11-27T21:05:01.123+00:00"
    # every bundle file, relative to the bundle root, with sha256 and contentSize
    assert sorted(ids(root["hasPart"])) == sorted(f.path for f in files)
    for f in files:
        ent = g[f.path]
        assert ent["@type"] == "File"
        assert ent["sha256"] == f.sha256 and ent["contentSize"] == f.size
    # one CreateAction per command, mentioned from the root
    actions = [e for e in md["@graph"] if e["@type"] == "CreateAction"]
    assert [a["@id"] for a in actions] == [f"#cmd-{c.step}" for c in result.commands]
    assert sorted(ids(root["mentions"])) == sorted(a["@id"] for a in actions)
    build, run_c, run_py = actions
    assert g[ids(build["instrument"])[0]] == {
        "@id": "#tool-gcc", "@type": "SoftwareApplication", "name": "gcc",
        "softwareVersion": "12.2.0", "url": "https://gcc.gnu.org/"}
    engine_py = g[ids(run_py["instrument"])[0]]
    assert engine_py["@type"] == "SoftwareApplication" and engine_py["name"].endswith("py")
    assert g[ids(engine_py["softwareRequirements"])[0]]["softwareVersion"] == "3.11.7"
    for a, c in zip(actions, result.commands):
        assert a["startTime"] == iso_time(c.start_utc) == "2026-11-27T21:05:01.123+00:00"
        assert a["endTime"] == "2026-11-27T21:05:09.223+00:00"
        assert a["actionStatus"] == COMPLETED and "error" not in a
        env = {g[i]["name"]: g[i]["value"] for i in ids(a["environment"])}
        assert env == dict(c.env)
        assert all(g[i]["@type"] == "PropertyValue" for i in ids(a["environment"]))
        assert ids(a["containerImage"]) == ["#container-image"]
        assert {"logs/" + c.step + ".stdout", "logs/" + c.step + ".stderr"} <= set(
            ids(a["result"]))
    # the C image in the bundle is run-c's output; the built binary is run-c's object
    assert "images/c.bin" in ids(run_c["result"])
    binary = ids(build["result"])[0]
    assert g[binary]["name"] == "minibragg" and binary in ids(run_c["object"])
    inputs = [g[i] for i in ids(run_c["object"])]
    assert {"A.mat", "scaled.hkl"} <= {e["name"] for e in inputs}
    assert all("sha256" in e and "contentSize" in e for e in inputs)
    image = g["#container-image"]
    assert image["@type"] == "ContainerImage"
    assert image["identifier"] == CONTAINER["image_id"]
    assert image["sha256"] == CONTAINER["image_id"].split(":")[1]
    assert image["registry"] == "ghcr.io" and image["tag"] == "0.1.0"


def test_partial_crate_says_what_failed(partial_bundle):
    _root, result, _files, md = partial_bundle
    g = graph(md)
    run_py = g["#cmd-run-py"]
    assert run_py["actionStatus"] == FAILED
    assert run_py["error"] == "exited with code 1"
    assert g["#cmd-run-c"]["actionStatus"] == COMPLETED
    assert "partial" in g["./"]["description"] and "incomplete" in g["./"]["description"]
    assert "containerImage" not in run_py and "#container-image" not in g


def test_timeout_and_start_failure_errors():
    result = partial_result()
    cmds = list(result.commands)
    cmds[2] = dataclasses.replace(cmds[2], exit_code=None, timed_out=True, wall_s=600.0)
    cmds[1] = dataclasses.replace(cmds[1], exit_code=None, error="No such file: minibragg")
    md = crate_metadata(dataclasses.replace(result, commands=tuple(cmds)), [])
    g = graph(md)
    assert g["#cmd-run-py"]["error"] == "timed out after 600.0 s"
    assert g["#cmd-run-c"]["error"] == "did not start: No such file: minibragg"


def test_pure_and_json_ready(complete_bundle):
    _root, result, files, md = complete_bundle
    assert crate_metadata(result, files) == md
    json.dumps(md, allow_nan=False)
    # the crate never lists itself
    assert crate_metadata(result, [*files, FileDigest("ro-crate-metadata.json", 1, "0" * 64)]
                          ) == md


def test_validator_catches_a_missing_instrument(tmp_path, complete_bundle, cache_path):
    """Negative control: the same crate without an action's instrument fails at REQUIRED."""
    root, _result, _files, md = complete_bundle
    broken = json.loads(json.dumps(md))
    for e in broken["@graph"]:
        if e["@id"] == "#cmd-run-c":
            del e["instrument"]
    bad = tmp_path / "bad"
    for f in root.rglob("*"):
        if f.is_file():
            (bad / f.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            (bad / f.relative_to(root)).write_bytes(f.read_bytes())
    write_crate(bad, broken)
    issues = validate_crate(bad, cache_path)
    assert any("instrument" in i for i in issues), issues


def test_offline_without_the_seeded_context_fails(tmp_path, complete_bundle):
    """Negative control: offline with an empty cache, the context is unreachable, so the
    REQUIRED context check fails; the seeded cache is what lets the real checks pass."""
    from rocrate_validator import services
    from rocrate_validator.models import Severity, ValidationSettings

    settings = ValidationSettings(rocrate_uri=str(complete_bundle[0]),
                                  profile_identifier="process-run-crate-0.5",
                                  requirement_severity=Severity.REQUIRED, offline=True,
                                  cache_path=tmp_path / "empty_cache")
    result = services.validate(settings)
    assert not result.passed()
    assert any("context" in str(i.message).lower() for i in result.get_issues())


def test_iso_time():
    assert iso_time("2026-11-27T21:05:01.123456Z") == "2026-11-27T21:05:01.123+00:00"
    assert iso_time("2026-11-27T21:05:01Z") == "2026-11-27T21:05:01.000+00:00"
    assert iso_time("not a time") == "not a time"


def test_a_file_one_step_writes_and_the_next_reads_is_one_entity():
    from capture_fixtures import command, digest

    result = divergent_result()
    amat = digest("A.mat", "input", 120)
    made = FileDigest("inputs/A.mat", amat.size, amat.sha256, "scratch:prepare-inputs")
    prepare = command("prepare-inputs", "prepare", None, ["/usr/bin/python", "-m", "inputs"], 0,
                      0.5, outputs=[made])
    md = crate_metadata(dataclasses.replace(result, commands=(prepare, *result.commands)), [])
    g = graph(md)
    written = ids(g["#cmd-prepare-inputs"]["result"])[0]
    assert written in ids(g["#cmd-run-c"]["object"]) and written in ids(g["#cmd-run-py"]["object"])
    ent = g[written]
    assert ent["@type"] == "File" and ent["name"] == "A.mat" and ent["sha256"] == amat.sha256
    assert "inputs/A.mat under scratch:prepare-inputs" in ent["description"]
    assert "A.mat under input" in ent["description"]
    assert ids(g["#cmd-prepare-inputs"]["instrument"]) == ["#tool-python"]
