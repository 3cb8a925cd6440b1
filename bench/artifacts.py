"""Artifact sizes: the handler zip and the dependency layer, built by infra.package (`make package`)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "lambda"
# Lambda's limits: 50 MB zipped for a direct upload, 250 MB unzipped for function + layers.
UNZIPPED_LIMIT = 250 * 1024 * 1024


def _describe(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
        files = len(zf.infolist())
    return {
        "path": str(path.relative_to(ROOT)),
        "bytes": path.stat().st_size,
        "unzipped_bytes": unzipped,
        "files": files,
    }


def measure(build: bool = True, timeout: float = 600) -> dict[str, Any]:
    """Build with infra.package (the layer is reused while the lock is unchanged), then read the sizes."""
    if not (ROOT / "infra" / "package.py").is_file():
        return {"built": False, "reason": "infra/package.py does not exist yet"}
    if build:
        try:
            result = subprocess.run(
                [sys.executable, "-m", "infra.package"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"built": False, "reason": f"infra.package took longer than {timeout:.0f} s"}
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip().splitlines()
            return {"built": False, "reason": f"infra.package failed: {reason[-1] if reason else result.returncode}"}
    found = {name: BUILD / f"{name}.zip" for name in ("handlers", "layer")}
    missing = [str(p.relative_to(ROOT)) for p in found.values() if not p.is_file()]
    if missing:
        return {"built": False, "reason": f"missing {', '.join(missing)}"}
    out: dict[str, Any] = {"built": True, **{name: _describe(path) for name, path in found.items()}}
    out["unzipped_total_bytes"] = out["handlers"]["unzipped_bytes"] + out["layer"]["unzipped_bytes"]
    out["unzipped_limit_bytes"] = UNZIPPED_LIMIT
    return out
