"""deploy.yaml: the pipeline of deploy groups, and what is wrong with a deploy.yaml (pure).

`soa_config` reads the file and calls these. Keys are checked like the other files: a key
nobody knows is an error with a did-you-mean hint (at any depth: `pipeline[1].parallel[0].x`),
a step key PaaSTA knows but paasta_lite does not use is a warning. Deploy groups named by the
pipeline and by the instances should match: each mismatch is a warning, most likely a typo.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from paasta_lite.config.config_keys import DEPLOY_KEYS, IGNORED_STEP_KEYS, PIPELINE_ENTRY_KEYS, STEP_KEYS
from paasta_lite.config.validation import classify_keys, did_you_mean, schema_problems
from paasta_lite.errors import Problem

#: Pipeline steps that build or test rather than deploy (PaaSTA's DEPLOY_PIPELINE_NON_DEPLOY_STEPS).
BUILD_STEPS = frozenset(
    {"itest", "itest-and-push-to-registry", "security-check", "push-to-registry", "performance-check"}
)

#: (field path, deploy group, wait_for_deployment) of one deploy step
DeployStep = tuple[str, str, bool]


def pipeline_steps(data: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(field path, mapping, is a parallel block) for each entry of the pipeline, each block
    followed by its steps; entries that are not mappings are skipped (the schema reports them)."""
    pipeline = data.get("pipeline")
    for index, entry in enumerate(pipeline if isinstance(pipeline, list) else ()):
        if not isinstance(entry, dict):
            continue
        parallel = entry.get("parallel")
        yield f"pipeline[{index}]", entry, bool(parallel)
        for inner, step in enumerate(parallel if isinstance(parallel, list) else ()):
            if isinstance(step, dict):
                yield f"pipeline[{index}].parallel[{inner}]", step, False


def deploy_group_steps(data: Mapping[str, Any]) -> list[DeployStep]:
    """Every deploy step, in pipeline order (build steps, `command-*` steps and parallel blocks
    themselves are not deploy groups)."""
    steps = []
    for field_name, step, is_block in pipeline_steps(data):
        name = step.get("step")
        if is_block or not isinstance(name, str) or not name:
            continue
        if name.startswith("command-") or name in BUILD_STEPS:
            continue
        steps.append((f"{field_name}.step", name, bool(step.get("wait_for_deployment"))))
    return steps


def parse_pipeline(data: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
    """Deploy groups in pipeline order (parallel blocks flattened), and the groups that ask for
    `wait_for_deployment`."""
    steps = deploy_group_steps(data)
    return tuple(group for _, group, _ in steps), frozenset(group for _, group, wait in steps if wait)


def deploy_yaml_problems(data: Mapping[str, Any], *, path: str) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of a deploy.yaml document: unknown keys at any depth, PaaSTA-only step
    keys, and the deploy schema."""
    errors, warnings = classify_keys(data, known=DEPLOY_KEYS, ignored=(), path=path, instance=None)
    for field_name, step, _ in pipeline_steps(data):
        # `parallel` is allowed on a pipeline entry, not inside a parallel block
        known = STEP_KEYS if ".parallel[" in field_name else PIPELINE_ENTRY_KEYS
        step_errors, step_warnings = classify_keys(
            step, known=known, ignored=IGNORED_STEP_KEYS, path=path, instance=None, field_prefix=field_name
        )
        errors += step_errors
        warnings += step_warnings
    errors += schema_problems("deploy", data, path=path)
    return errors, warnings


def group_warnings(
    steps: Iterable[DeployStep], used: set[str], *, path: str, every_cluster: bool
) -> list[Problem]:
    """Deploy groups instances use that the pipeline lacks, and pipeline steps no instance uses
    (with a hint). The latter only when `every_cluster` of the service was loaded: otherwise the
    instances of the other clusters are unknown."""
    steps = list(steps)
    groups = {group for _, group, _ in steps}
    warnings = [
        Problem(path, f"deploy group '{group}' is used by instances but is not a step of the pipeline")
        for group in (sorted(used - groups) if groups else ())
    ]
    warnings += [
        Problem(path, f"deploy group '{group}' is not used by any instance{did_you_mean(group, used)}",
                field=field_name)
        for field_name, group, _ in (steps if every_cluster else ())
        if group not in used
    ]
    return warnings
