"""Every result in the book's prose comes from a record: no result-like number typed by hand.

Prose (book/*.md and the notebooks' markdown cells) may quote results only through myst-nb's
``glue`` roles or computed tables. The scan skips code (fenced blocks and ``inline code``),
math (``$...$``), link targets, glue roles and HTML comments; what remains must not hold a
result-like number: a decimal with a two-digit integer part (``87.06``, ``72.7``), a decimal
percentage (``3.5 %``), an approximate share (``about 90%``) or a ``mean ± std``. Settings
such as "a random 20% of the test nodes" are not results; results belong in glue.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = [
    re.compile(r"```.*?```", re.S),          # fenced code and directives
    re.compile(r":::.*?:::", re.S),
    re.compile(r"<!--.*?-->", re.S),        # comments
    re.compile(r"\$\$.*?\$\$", re.S),        # display math
    re.compile(r"\$[^$\n]+\$"),              # inline math
    re.compile(r"\{[a-z:-]+\}`[^`]*`"),      # roles, glue included
    re.compile(r"`[^`\n]*`"),                # inline code
    re.compile(r"\]\([^)]*\)"),              # link targets
    re.compile(r"^\s*\|.*\|\s*$", re.M),     # pipe tables (computed tables live in code cells)
]
RESULT_LIKE = re.compile(r"(?<![\w.])\d{2}\.\d+(?![\w.])"             # 87.06, 72.7
                         r"|\d+\.\d+\s?%"                                # 3.5 %
                         r"|(?:about|around|nearly|roughly|over|under|only)\s+\d+\s?%"  # "about 90%"
                         r"|\d\s*±\s*\d")                                 # 87.06 ± 1.20


def _prose_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


def _offenders(text: str) -> list[str]:
    for pattern in SKIPPED:
        text = pattern.sub(" ", text)
    found = []
    for line in text.splitlines():
        for match in RESULT_LIKE.finditer(line):
            found.append(f"{match.group(0)!r} in: {line.strip()[:120]}")
    return found


PAGES = sorted(ROOT.glob("book/*.md")) + sorted(ROOT.glob("notebooks/*.ipynb"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_result_like_number_is_typed_in_prose(page):
    assert not _offenders(_prose_of(page)), "\n".join(_offenders(_prose_of(page)))


def test_the_scanner_catches_typed_results_and_spares_code_math_and_glue():
    assert _offenders("SA-MLP reaches 72.72 on Chameleon") and _offenders("right on about 90% of the nodes")
    assert _offenders("87.06 ± 1.20")
    clean = "lr `0.003`, $\\tau = 8$, {glue:text}`acc:.2f` points, [link](a/b-12.34.md), 2 layers, 2024"
    assert not _offenders(clean)
