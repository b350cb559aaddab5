"""Unit tests of the pure parts of samlp_lite.book: no book is built here."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from samlp_lite import book

REPO_ROOT = Path(__file__).resolve().parent.parent


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    (package / "config").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "__init__.py").write_text("x = 1\n")
    (package / "config" / "hyper.yaml").write_text("lr: 0.01\n")
    (package / "notes.txt").write_text("not a source file\n")
    (package / "__pycache__" / "mod.cpython-311.py").write_text("cached\n")
    return package


def _fake_build(build_dir: Path) -> None:
    for name in (".jupyter_cache", ".doctrees", "html"):
        (build_dir / name).mkdir(parents=True)
        (build_dir / name / "file").write_text("output\n")


# ------------------------------------------------------------------------------- sources hash

def test_source_files_are_py_and_yaml_outside_pycache(tmp_path):
    package = _package(tmp_path)
    names = [p.relative_to(package).as_posix() for p in book.source_files(package)]
    assert names == ["__init__.py", "config/hyper.yaml"]


def test_sources_hash_changes_with_content_names_and_new_files_only(tmp_path):
    package = _package(tmp_path)
    first = book.sources_hash(package)
    assert first == book.sources_hash(package)

    (package / "notes.txt").write_text("edited, but not a source\n")
    (package / "__pycache__" / "other.py").write_text("ignored\n")
    assert book.sources_hash(package) == first

    (package / "config" / "hyper.yaml").write_text("lr: 0.02\n")
    edited = book.sources_hash(package)
    assert edited != first

    (package / "config" / "hyper.yaml").rename(package / "config" / "other.yaml")
    renamed = book.sources_hash(package)
    assert renamed != edited

    (package / "new.py").write_text("")
    assert book.sources_hash(package) != renamed


def test_sources_hash_of_the_real_package_is_stable():
    assert book.sources_hash() == book.sources_hash()
    assert len(book.sources_hash()) == 64
    assert any(p.name == "book.py" for p in book.source_files())


# ------------------------------------------------------------------------------ invalidation

def test_first_build_keeps_nothing_to_clear_and_records_hash(tmp_path):
    package = _package(tmp_path)
    build_dir = tmp_path / "_build"
    assert book.invalidate_stale_cache(build_dir, package) is False
    stored = (build_dir / book.SOURCES_HASH_FILE).read_text().strip()
    assert stored == book.sources_hash(package)


def test_unchanged_sources_keep_the_cache(tmp_path):
    package = _package(tmp_path)
    build_dir = tmp_path / "_build"
    book.invalidate_stale_cache(build_dir, package)
    _fake_build(build_dir)
    assert book.invalidate_stale_cache(build_dir, package) is False
    assert (build_dir / ".jupyter_cache" / "file").is_file()
    assert (build_dir / ".doctrees" / "file").is_file()


def test_changed_sources_clear_cache_and_sphinx_environment_but_not_html(tmp_path):
    package = _package(tmp_path)
    build_dir = tmp_path / "_build"
    book.invalidate_stale_cache(build_dir, package)
    _fake_build(build_dir)
    (package / "__init__.py").write_text("x = 2\n")

    assert book.invalidate_stale_cache(build_dir, package) is True
    assert not (build_dir / ".jupyter_cache").exists()
    assert not (build_dir / ".doctrees").exists()
    assert (build_dir / "html" / "file").is_file()
    assert (build_dir / book.SOURCES_HASH_FILE).read_text().strip() == book.sources_hash(package)
    # ...and the next build with the same sources keeps what it then caches.
    _fake_build_cache = build_dir / ".jupyter_cache"
    _fake_build_cache.mkdir()
    assert book.invalidate_stale_cache(build_dir, package) is False
    assert _fake_build_cache.is_dir()


def test_cache_of_unknown_provenance_is_cleared(tmp_path):
    package = _package(tmp_path)
    build_dir = tmp_path / "_build"
    _fake_build(build_dir)  # e.g. made by a plain `jupyter-book build`: no hash stored
    assert book.invalidate_stale_cache(build_dir, package) is True
    assert not (build_dir / ".jupyter_cache").exists()


# ------------------------------------------------------------------------- table of contents

def test_toc_pages_of_the_repository_toc_exist():
    pages = book.toc_pages(REPO_ROOT / "_toc.yml")
    assert pages[0] == "book/intro"
    for required in ("book/method", "book/howto", "notebooks/08_reproduce", "book/api", "book/references"):
        assert required in pages
    for page in pages:
        assert any((REPO_ROOT / f"{page}{suffix}").is_file() for suffix in book.PAGE_SUFFIXES), page


def test_toc_pages_order_nesting_suffixes_globs_and_urls(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.txt"):
        (tmp_path / "notebooks" / name).write_text("{}")
    toc = {
        "format": "jb-book",
        "root": "intro.md",
        "parts": [
            {"caption": "One", "chapters": [
                {"file": "ch1", "sections": [{"file": "ch1/sec.ipynb",
                                              "sections": [{"file": "ch1/deep"}]}]},
                {"url": "https://example.org", "title": "Elsewhere"},
            ]},
            {"caption": "Two", "chapters": [{"glob": "notebooks/*"}, {"file": "ch1"}]},
        ],
    }
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    assert book.toc_pages(tmp_path / "_toc.yml") == [
        "intro", "ch1", "ch1/sec", "ch1/deep", "notebooks/01_a", "notebooks/02_b"]


def test_toc_pages_without_parts(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: a\n  - file: b\n")
    assert book.toc_pages(tmp_path / "_toc.yml") == ["index", "a", "b"]


def test_toc_pages_rejects_a_file_that_is_not_a_toc(tmp_path):
    (tmp_path / "_toc.yml").write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="root"):
        book.toc_pages(tmp_path / "_toc.yml")


# ------------------------------------------------------------------ build plumbing, no build

def test_output_root_keeps_smoke_builds_apart(tmp_path):
    assert book.output_root(tmp_path, smoke=False) == tmp_path
    assert book.output_root(tmp_path, smoke=True) == tmp_path / "_build" / "smoke"


def test_build_command_strict_and_config(tmp_path):
    plain = book.build_command(tmp_path, smoke=False, strict=False, config=None)
    assert plain == ["jupyter-book", "build", str(tmp_path), "--path-output", str(tmp_path)]
    strict = book.build_command(tmp_path, smoke=True, strict=True, config=tmp_path / "c.yml")
    assert strict[-3:] == ["-W", "-n", "--keep-going"]
    assert strict[strict.index("--config") + 1] == str(tmp_path / "c.yml")
    assert strict[strict.index("--path-output") + 1] == str(tmp_path / "_build" / "smoke")


def test_effective_config_overrides_timeout_and_mathjax_only_when_asked(tmp_path):
    (tmp_path / "_config.yml").write_text((REPO_ROOT / "_config.yml").read_text())
    build_dir = tmp_path / "_build"
    assert book.effective_config(tmp_path, build_dir, timeout=None, mathjax_cdn=False) is None

    path = book.effective_config(tmp_path, build_dir, timeout=7200, mathjax_cdn=True)
    config = yaml.safe_load(path.read_text())
    assert config["execute"]["timeout"] == 7200
    assert config["execute"]["raise_on_error"] is True
    assert config["sphinx"]["config"]["mathjax_path"] == book.MATHJAX_CDN

    assert book.effective_config(tmp_path, build_dir, timeout=None, mathjax_cdn=False) is None
    assert not path.exists()


def test_repository_config_matches_what_the_build_relies_on():
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["raise_on_error"] is True
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert str(book.MATHJAX_DIR.parent) in config["sphinx"]["config"]["html_static_path"]
    assert "_build" in config["exclude_patterns"]


def test_extract_mathjax_keeps_only_needed_files_and_strips_prefix(tmp_path):
    tarball = tmp_path / "mathjax-3.2.2.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("package/es5/tex-chtml.js", "package/es5/output/chtml/fonts/woff-v2/a.woff",
                     "package/es5/tex-svg.js", "package/LICENSE", "package/package.json"):
            data = name.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    dest = tmp_path / "mathjax"
    book._extract_mathjax(tarball, dest)
    found = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert found == ["LICENSE", "output/chtml/fonts/woff-v2/a.woff", "tex-chtml.js"]


def test_ensure_mathjax_uses_an_existing_copy_without_npm(tmp_path, monkeypatch):
    entry = tmp_path / book.MATHJAX_DIR / "tex-chtml.js"
    entry.parent.mkdir(parents=True)
    entry.write_text("// mathjax")
    monkeypatch.setenv("PATH", "")
    assert book.ensure_mathjax(tmp_path) == entry


def test_ensure_mathjax_without_npm_warns_and_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "")
    assert book.ensure_mathjax(tmp_path) is None
    assert "npm" in capsys.readouterr().err


def test_build_book_refuses_a_folder_that_is_not_a_book(tmp_path):
    with pytest.raises(book.BookError, match="_config.yml"):
        book.build_book(tmp_path)
