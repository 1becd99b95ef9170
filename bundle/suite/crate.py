"""A suite bundle's ``ro-crate-metadata.json``: the root lists the suite bundle's own files and,
as ``hasPart`` datasets with relative ids ``../<member id>/``, the member bundles beside it (each
member carries its own crate describing its commands). Built with the ``rocrate`` library, in
bundle.present.crate's shape (RO-Crate 1.1, the same inline terms).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from bundle import __version__
from bundle.model.records import FileDigest
from bundle.present.crate import CRATE_VERSION, EXTRA_TERMS, METADATA_FILE, encoding_format, iso_time
from bundle.suite import vocabulary as words


def _member_datasets(crate: ROCrate, members: Sequence[Mapping[str, Any]]) -> list[Any]:
    out: dict[str, Any] = {}
    for m in members:
        for role, key, sha in (("image capture", "bundle", "manifest_sha256"),
                               ("traced capture", "trace_bundle", "trace_manifest_sha256")):
            bundle_id = m.get(key)
            if not bundle_id or bundle_id in out:
                continue
            props = {"@type": "Dataset", "name": f"{m['case']}/{m['run']} ({role})",
                     "identifier": bundle_id,
                     "description": f"member bundle, status {m.get('status')}; "
                                    f"its manifest.json has sha256 {m.get(sha)}"}
            out[bundle_id] = crate.add(ContextEntity(crate, f"../{bundle_id}/", properties=props))
    return list(out.values())


def suite_crate_metadata(data: Mapping[str, Any], files: Sequence[FileDigest]) -> dict:
    """The JSON-LD dict (pure): ``data`` is suite.json's content, ``files`` the bundle's files."""
    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_terms.update(EXTRA_TERMS)
    root = crate.root_dataset
    root["name"] = f"nb-evidence suite bundle {data['suite_id']}"
    root["description"] = (f"{words.suite_title(data['name'])} on target {data['target']}: "
                           f"{words.summary_line(data['summary'])}. "
                           f"Recorded by nb-evidence {__version__}.")
    root["identifier"] = data["suite_id"]
    root["datePublished"] = iso_time(data["created_utc"])
    parts = []
    for f in sorted(files, key=lambda d: d.path):
        if f.path == METADATA_FILE:
            continue
        parts.append(crate.add_file(dest_path=f.path, fetch_remote=False, validate_url=False, properties={
            "name": PurePosixPath(f.path).name, "contentSize": f.size, "sha256": f.sha256,
            "encodingFormat": encoding_format(f.path)}))
    root["hasPart"] = parts + _member_datasets(crate, data.get("members") or [])
    return crate.metadata.generate()


def write_suite_crate(bundle_dir: Path, data: Mapping[str, Any], files: Sequence[FileDigest]) -> Path:
    path = Path(bundle_dir) / METADATA_FILE
    path.write_text(json.dumps(suite_crate_metadata(data, files), indent=2, ensure_ascii=False,
                               allow_nan=False) + "\n", encoding="utf-8")
    return path
