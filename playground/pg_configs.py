"""Create the playground configs from the templates kept in this repository.

Files that already exist are never overwritten, so local edits survive (`make clean-playground`
starts over). Placeholders: ``{{cluster}}`` (the playground's PaaSTA cluster name) and
``{{repo_dir}}`` (this checkout); a template named ``kubernetes-CLUSTER.yaml`` is written as
``kubernetes-<cluster>.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from pg_common import ETC_DIR, SOA_DIR, TEMPLATES

TARGETS = {"etc_paasta": ETC_DIR, "soa_configs": SOA_DIR}


def render(text: str, cluster: str, repo_dir: Path) -> str:
    return text.replace("{{cluster}}", cluster).replace("{{repo_dir}}", str(repo_dir))


def create_configs(cluster: str, *, templates: Path = TEMPLATES, targets: dict[str, Path] | None = None,
                   repo_dir: Path | None = None) -> list[Path]:
    """Render every template that is missing from the playground dirs; return what was written."""
    targets = TARGETS if targets is None else targets
    repo_dir = TEMPLATES.parent.parent if repo_dir is None else repo_dir
    written = []
    for template_dir, target_dir in targets.items():
        for source in sorted((templates / template_dir).rglob("*")):
            if not source.is_file():
                continue
            relative = source.relative_to(templates / template_dir)
            target = target_dir / str(relative).replace("CLUSTER", cluster)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(source.read_text(), cluster, repo_dir))
            written.append(target)
    return written
