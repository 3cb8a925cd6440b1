"""Every file the program reads, resolved from this file: Pulumi's language host may run us from anywhere."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "handlers"
KIT = ROOT / "fanout_kit"
SCHEMAS = ROOT / "schemas"
WEB = ROOT / "web"
LOCK = ROOT / "requirements-lambda.lock"
BUILD = ROOT / "build" / "lambda"
