"""fanout's developer tool: the topology, the CLI and the local runtime."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
