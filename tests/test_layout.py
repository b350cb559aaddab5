"""The package's layout: subpackages by pipeline stage, no import from a later stage."""
import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "samlp_lite"
STAGES = {  # lower number = earlier stage; a module may import only from stages <= its own
    "runtime": 0, "records": 0, "config": 0,
    "data": 1, "models": 2, "train": 3, "serve": 4, "runs": 5, "report": 6, "notebook": 7, "book": 7, "cli": 8,
    "__init__": 0, "__main__": 8,
}


def _stage_of(module: str) -> int:
    part = module.split(".")[1] if module.count(".") else "__init__"
    return STAGES[part]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("samlp_lite") and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("samlp_lite")]
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_top_level_holds_few_modules_besides_subpackages():
    modules = [p.stem for p in PACKAGE.glob("*.py")]
    assert len(modules) <= 8, modules
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} >= {
        "data", "models", "train", "serve", "runs", "report", "cli", "config"}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_later_stage(path):
    own = _stage_of(_module_name(path))
    later = [m for m in _imports(path) if m != "samlp_lite" and _stage_of(m) > own]
    assert not later, f"{path.relative_to(ROOT)} (stage {own}) imports later stages: {later}"


def test_no_project_file_cites_a_private_note():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = [f for f in tracked if (ROOT / f).is_file() and f != Path(__file__).name
                 and "METHOD" + ".md" in (ROOT / f).read_text(errors="ignore")]
    assert not offenders, offenders
