"""Entry point of `pulumi up` / `pulumi preview` (Pulumi.yaml: main: infra/).

Builds the artifacts first (the handler zip always, the layer only when the lock changed), so a
deploy can never ship stale handler code; identical inputs give identical zips, so nothing
redeploys when nothing changed.
"""

from infra import context, package, settings, stack

artifacts = package.build_all()
built = stack.build(settings.load(), context.current(), artifacts)
stack.export(built)
