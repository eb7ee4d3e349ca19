"""Create the playground configs from the templates kept in this repository.

Files that already exist are never overwritten, so local edits survive. Placeholders:
``{{cluster}}`` (the playground cluster name) and ``{{repo_dir}}`` (this checkout); a template
file named ``kubernetes-CLUSTER.yaml`` is written as ``kubernetes-<cluster>.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_DIR / "playground" / "templates"
TARGETS = {"etc_paasta": REPO_DIR / "etc_paasta_playground", "soa_configs": REPO_DIR / "soa_config_playground"}


def render(text: str, cluster: str) -> str:
    return text.replace("{{cluster}}", cluster).replace("{{repo_dir}}", str(REPO_DIR))


def create_configs(cluster: str) -> list[Path]:
    """Render every template that is missing from the playground dirs; return what was written."""
    written = []
    for template_dir, target_dir in TARGETS.items():
        for source in sorted((TEMPLATES / template_dir).rglob("*")):
            if not source.is_file():
                continue
            relative = source.relative_to(TEMPLATES / template_dir)
            target = target_dir / str(relative).replace("CLUSTER", cluster)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(source.read_text(), cluster))
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    configs = sub.add_parser("configs", help="create the playground configs if missing")
    configs.add_argument("--cluster", required=True)
    args = parser.parse_args()
    if args.command == "configs":
        written = create_configs(args.cluster)
        for path in written:
            print(f"created {path.relative_to(REPO_DIR)}")
        if not written:
            print("playground configs already exist (delete them with `make clean-playground`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
