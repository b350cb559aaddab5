"""Sphinx extension for book/api.md: one line per documented module.

The ``samlp-modules`` directive takes module names, one per line, and emits for each a
section titled with the module's name holding its ``automodule`` documentation. The
sections show up in the page's table of contents, so readers see where each module starts.
"""
from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


class SamlpModules(SphinxDirective):
    """``samlp-modules``: an ``automodule`` section per listed module (``#`` starts a comment)."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        sections: list[nodes.Node] = []
        for offset, line in enumerate(self.content):
            name = line.split("#", 1)[0].strip()
            if not name:
                continue
            section = nodes.section(ids=[nodes.make_id(f"module-doc-{name}")], names=[name])
            section += nodes.title("", "", nodes.literal(text=name))
            # eval-rst: autodoc emits reStructuredText, which MyST would read as Markdown.
            body = StringList(["```{eval-rst}", f".. automodule:: {name}", "```"],
                              source=self.content.source(offset))
            self.state.nested_parse(body, self.content_offset + offset, section)
            self.state.document.note_implicit_target(section, section)
            sections.append(section)
        return sections


def setup(app: Sphinx) -> dict:
    app.add_directive("samlp-modules", SamlpModules)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
