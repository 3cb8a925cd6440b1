"""Entry point of `pulumi up` / `pulumi preview` (Pulumi.yaml: main: infra/).

Builds the artifacts first (the handler zip always, the layer only when the lock changed), so a
deploy can never ship stale handler code; identical inputs give identical zips, so nothing
redeploys when nothing changed.
"""

import pulumi

from fanout.topology import TopologyError
from infra import context, package, settings, stack

try:
    # The config first: a refused setting fails in a second, before the artifacts are built.
    config = settings.load()
    artifacts = package.build_all()
    built = stack.build(config, context.current(), artifacts)
except TopologyError as exc:
    # One line naming the problem (RunError: Pulumi prints it without the program's traceback).
    raise pulumi.RunError(str(exc)) from None
stack.export(built)
