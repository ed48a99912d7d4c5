#!/usr/bin/env python3
"""Structural checks of action.yml, the GitHub workflows and the GitLab template, in the
spirit of actionlint (which is not installable here, and no runner is reachable): keys
GitHub accepts, a shell on every composite `run` step, every `${{ inputs.X }}` and
`steps.ID.outputs` naming something declared, every `with:` of the local action naming
one of its inputs, every job with `runs-on` and steps. Exit 1 with one line per problem.

Usage: ci/check_actions.py [REPO_ROOT]   (needs python3-yaml)
"""
import re
import sys
from pathlib import Path

import yaml

ACTION_KEYS = {"name", "author", "description", "inputs", "outputs", "runs", "branding"}
INPUT_KEYS = {"description", "required", "default", "deprecationMessage"}
STEP_KEYS = {"id", "if", "name", "uses", "run", "shell", "with", "env",
             "working-directory", "continue-on-error", "timeout-minutes"}
COMPOSITE_STEP_KEYS = STEP_KEYS - {"timeout-minutes"}
JOB_KEYS = {"name", "needs", "runs-on", "permissions", "environment", "concurrency",
            "outputs", "env", "defaults", "if", "steps", "timeout-minutes", "strategy",
            "continue-on-error", "container", "services", "uses", "with", "secrets"}
ID = re.compile(r"^[_a-zA-Z][a-zA-Z0-9_-]*$")
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path):
    # YAML 1.1 reads a bare `on` as True: GitHub reads it as the key `on`.
    doc = yaml.safe_load(path.read_text())
    if isinstance(doc, dict) and True in doc:
        doc["on"] = doc.pop(True)
    return doc


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def references(node, pattern):
    """Every name `pattern` captures inside ${{ }} (and in bare `if:` conditions)."""
    found = set()
    for s in strings(node):
        for expr in EXPR.findall(s) + [s]:
            found.update(re.findall(pattern, expr))
    return found


def check_steps(where, steps, allowed, composite, problems):
    ids = set()
    if not isinstance(steps, list) or not steps:
        problems.append(f"{where}: no steps")
        return ids
    for i, step in enumerate(steps):
        at = f"{where} step {i + 1} ({step.get('name', '?')})"
        for k in step:
            if k not in allowed:
                problems.append(f"{at}: unknown key {k!r}")
        if ("run" in step) == ("uses" in step):
            problems.append(f"{at}: needs exactly one of run and uses")
        if composite and "run" in step and "shell" not in step:
            problems.append(f"{at}: a composite run step needs a shell")
        if "uses" in step and "shell" in step:
            problems.append(f"{at}: shell on a uses step")
        if "id" in step:
            if not ID.match(step["id"]) or step["id"] in ids:
                problems.append(f"{at}: bad or repeated id {step['id']!r}")
            ids.add(step["id"])
    for ref in references(steps, r"steps\.([_a-zA-Z][a-zA-Z0-9_-]*)\.outputs"):
        if ref not in ids:
            problems.append(f"{where}: steps.{ref}.outputs names no step")
    return ids


def check_action(path, problems):
    doc = load(path)
    for k in doc:
        if k not in ACTION_KEYS:
            problems.append(f"{path}: unknown key {k!r}")
    for k in ("name", "description", "runs"):
        if k not in doc:
            problems.append(f"{path}: missing {k}")
    inputs = doc.get("inputs") or {}
    for name, spec in inputs.items():
        if not ID.match(name):
            problems.append(f"{path}: bad input id {name!r}")
        if "description" not in spec:
            problems.append(f"{path}: input {name} has no description")
        for k in spec:
            if k not in INPUT_KEYS:
                problems.append(f"{path}: input {name}: unknown key {k!r}")
        if "default" in spec and not isinstance(spec["default"], str):
            problems.append(f"{path}: input {name}: default must be a string")
    runs = doc.get("runs") or {}
    if runs.get("using") != "composite":
        problems.append(f"{path}: runs.using is not composite")
    ids = check_steps(f"{path}", runs.get("steps"), COMPOSITE_STEP_KEYS, True, problems)
    for name, spec in (doc.get("outputs") or {}).items():
        if "description" not in spec or "value" not in spec:
            problems.append(f"{path}: output {name} needs description and value")
        for ref in references(spec, r"steps\.([_a-zA-Z][a-zA-Z0-9_-]*)\.outputs"):
            if ref not in ids:
                problems.append(f"{path}: output {name} names no step {ref}")
    for ref in references(runs, r"inputs\.([_a-zA-Z][a-zA-Z0-9_-]*)"):
        if ref not in inputs:
            problems.append(f"{path}: inputs.{ref} is not declared")
    return inputs


def check_workflow(path, action_inputs, problems):
    doc = load(path)
    for k in ("on", "jobs"):
        if k not in doc:
            problems.append(f"{path}: missing {k}")
    for job, spec in (doc.get("jobs") or {}).items():
        where = f"{path} job {job}"
        for k in spec:
            if k not in JOB_KEYS:
                problems.append(f"{where}: unknown key {k!r}")
        if "runs-on" not in spec:
            problems.append(f"{where}: no runs-on")
        for need in [spec["needs"]] if isinstance(spec.get("needs"), str) else spec.get("needs", []):
            if need not in doc["jobs"]:
                problems.append(f"{where}: needs unknown job {need}")
        check_steps(where, spec.get("steps"), STEP_KEYS, False, problems)
        for step in spec.get("steps") or []:
            if step.get("uses") == "./":
                for k in step.get("with") or {}:
                    if k not in action_inputs:
                        problems.append(f"{where}: with.{k} is not an input of action.yml")


def check_gitlab(path, problems):
    doc = load(path)
    for job, spec in doc.items():
        if job.startswith(".") or job in {"stages", "variables", "default", "include", "workflow"}:
            continue
        if not isinstance(spec, dict) or not ("script" in spec or "extends" in spec):
            problems.append(f"{path}: job {job} has no script")


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    problems = []
    inputs = check_action(root / "action.yml", problems)
    for wf in sorted((root / ".github" / "workflows").glob("*.yml")):
        check_workflow(wf, inputs, problems)
    gitlab = root / "ci" / "gitlab-overbook.yml"
    if gitlab.exists():
        check_gitlab(gitlab, problems)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
