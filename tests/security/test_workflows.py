"""The GitHub workflows: pinned actions, deploys only from main, no high zizmor finding, OIDC trust documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ZIZMOR = Path(sys.executable).with_name("zizmor")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\b")
ON_MAIN = "github.ref == 'refs/heads/main'"


def _workflows() -> list[Path]:
    found = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert found, f"no workflows in {WORKFLOWS}"
    return found


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version():
    """A tag can be moved to other code; a commit SHA cannot. The comment says which release it is."""
    checked = 0
    for path in _workflows():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not match or match.group(1).startswith(("./", "docker://")):
                continue
            ref, rest = match.groups()
            assert PINNED.match(ref), f"{path.name}:{number}: {ref} is not pinned to a full commit SHA"
            assert VERSION_COMMENT.search(rest), f"{path.name}:{number}: {ref} has no '# vX.Y.Z' comment"
            checked += 1
    assert checked >= 4


def test_deploy_jobs_run_only_from_main():
    """workflow_dispatch can start the workflow from any branch: every deploying job must check the ref."""
    doc = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text(encoding="utf-8"))
    triggers = doc.get("on", doc.get(True))  # PyYAML reads the bare key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert jobs
    for name, job in jobs.items():
        assert ON_MAIN in str(job.get("if", "")), f"deploy.yml job {name} runs from any branch"


def test_zizmor_reports_no_high_finding():
    assert ZIZMOR.is_file(), f"zizmor is not installed in {ZIZMOR.parent} (make install)"
    result = subprocess.run(
        [str(ZIZMOR), "--offline", "--format", "json", "--min-severity", "high", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    findings = json.loads(result.stdout or "[]")
    summary = [f"{f.get('ident')}: {f.get('desc')}" for f in findings]
    assert not findings, summary
    assert result.returncode == 0, result.stderr[-2000:]


def test_make_lint_runs_zizmor():
    result = subprocess.run(["make", "-n", "lint"], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert re.search(r"zizmor --offline \.github/workflows", result.stdout), result.stdout


def test_documented_oidc_trust_checks_branch_and_environment():
    """A trust on the environment alone lets any branch that may deploy there assume the role."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    policies = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]
    trusts = [p for p in policies if "sts:AssumeRoleWithWebIdentity" in json.dumps(p)]
    assert trusts, "docs/deploy.md shows no OIDC trust policy"
    for policy in trusts:
        for statement in policy["Statement"]:
            equals = statement["Condition"]["StringEquals"]
            assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
            sub = equals["token.actions.githubusercontent.com:sub"]
            assert re.fullmatch(r"repo:[^:*]+:environment:[^:*]+:ref:refs/heads/main", sub), sub
    # The sub only carries the branch once the repository's claim template includes it.
    assert '"include_claim_keys": ["repo", "context", "ref"]' in text
