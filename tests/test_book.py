"""Tests of samlp_lite.book: the pure parts, the build's report with a stand-in for
jupyter-book, and (marked slow) real builds of a three-notebook book."""
from __future__ import annotations

import io
import pickle
import subprocess
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

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
    assert config["execute"]["raise_on_error"] is False
    assert config["sphinx"]["config"]["mathjax_path"] == book.MATHJAX_CDN

    assert book.effective_config(tmp_path, build_dir, timeout=None, mathjax_cdn=False) is None
    assert not path.exists()


def test_repository_config_matches_what_the_build_relies_on():
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    # A failing chapter must not take the book down; build_book reports it instead.
    assert config["execute"]["raise_on_error"] is False
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



# ------------------------------------------------------------------- kernel environment

def test_build_environment_gives_kernels_one_thread_unless_told(monkeypatch):
    env, notes = book.build_environment({"PATH": "/bin"}, smoke=False)
    assert env["SAMLP_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1" and env["PATH"] == "/bin"
    assert "SAMLP_THREADS=1" in notes[0]

    env, notes = book.build_environment({"SAMLP_THREADS": "3", "OMP_NUM_THREADS": "2"}, smoke=False)
    assert env["SAMLP_THREADS"] == "3" and env["OMP_NUM_THREADS"] == "2"
    assert "from your environment" in notes[0]

    for bad in ("0", "two", "-1"):
        with pytest.raises(book.BookError, match="SAMLP_THREADS"):
            book.build_environment({"SAMLP_THREADS": bad}, smoke=False)


def test_build_environment_smoke_flag():
    base = {"SAMLP_SMOKE": "1"}
    env, notes = book.build_environment(base, smoke=False)
    assert "SAMLP_SMOKE" not in env and any("ignoring SAMLP_SMOKE" in note for note in notes)
    assert base == {"SAMLP_SMOKE": "1"}  # the caller's mapping is left alone
    env, _ = book.build_environment({}, smoke=True)
    assert env["SAMLP_SMOKE"] == "1"


# ------------------------------------------------------------------ per-chapter report

TIMEOUT_TRACEBACK = (
    "Traceback (most recent call last):\n  File \"nbclient/client.py\", line 856\n"
    "nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, after 1800 seconds.\n"
    "The message was: Cell execution timed out.\nHere is a preview of the cell contents:\n"
    "-------------------\nablation = run_ablations(graph)\n-------------------\n")
ERROR_TRACEBACK = ("\x1b[31m------------------\x1b[39m\n\x1b[31mValueError\x1b[39m    Traceback\n"
                   "\x1b[32m----> \x1b[39m1 raise ValueError('boom')\n\n\x1b[31mValueError\x1b[39m: boom\n\n")


def _book_root(tmp_path: Path, chapters=("01_ok", "02_cached", "03_error", "04_slow", "05_never")) -> Path:
    (tmp_path / "notebooks").mkdir(parents=True, exist_ok=True)
    for name in chapters:
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}")
    (tmp_path / "intro.md").write_text("# Intro\n")
    toc = {"format": "jb-book", "root": "intro",
           "chapters": [{"file": f"notebooks/{name}"} for name in chapters]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  timeout: 1800\n")
    return tmp_path


def _exec(succeeded, runtime, mtime, error=None, traceback=None):
    return {"exec_data": {"mtime": mtime, "runtime": runtime, "method": "cache", "succeeded": succeeded,
                          "error": error, "traceback": traceback}}


def _write_environment(build_dir: Path, started: float) -> None:
    metadata = {
        "notebooks/01_ok": _exec(True, 12.5, started + 5),
        "notebooks/02_cached": _exec(True, 300.0, started - 86400),
        "notebooks/03_error": _exec(False, 2.0, started + 20, "CellExecutionError", ERROR_TRACEBACK),
        "notebooks/04_slow": _exec(False, 1800.4, started + 2000, "CellTimeoutError", TIMEOUT_TRACEBACK),
        "intro": {"js_files": {}},  # a page without execution data
    }
    (build_dir / ".doctrees").mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".doctrees" / "environment.pickle", "wb") as handle:
        pickle.dump(SimpleNamespace(nb_metadata=metadata), handle)


def test_chapter_runs_classify_every_notebook_in_toc_order(tmp_path):
    root = _book_root(tmp_path)
    build_dir = root / "_build"
    started = time.time()
    _write_environment(build_dir, started)
    runs = book.chapter_runs(root, build_dir, started_at=started)
    assert [(r.page, r.status) for r in runs] == [
        ("notebooks/01_ok", book.EXECUTED), ("notebooks/02_cached", book.CACHED),
        ("notebooks/03_error", book.FAILED), ("notebooks/04_slow", book.TIMED_OUT),
        ("notebooks/05_never", book.NOT_RUN)]
    assert runs[0].seconds == 12.5 and runs[4].seconds is None
    assert runs[2].message == "ValueError: boom" and runs[2].error == "CellExecutionError"
    assert "after 1800 seconds" in runs[3].message and "run_ablations" in runs[3].message


def test_chapter_runs_tell_executed_from_cached_by_new_cache_records(tmp_path, monkeypatch):
    root = _book_root(tmp_path)
    build_dir = root / "_build"
    started = time.time()
    _write_environment(build_dir, started)
    ok, cached = (str(root / "notebooks" / f"{name}.ipynb") for name in ("01_ok", "02_cached"))
    before = {(1, cached, "yesterday")}
    monkeypatch.setattr(book, "cache_records", lambda path: before | {(2, ok, "today")})
    runs = {r.page: r.status for r in book.chapter_runs(root, build_dir, started_at=started,
                                                        cached_before=before)}
    assert runs["notebooks/01_ok"] == book.EXECUTED and runs["notebooks/02_cached"] == book.CACHED
    # The cache, not the clock, decides: with no new record even a fresh timestamp is "cached".
    monkeypatch.setattr(book, "cache_records", lambda path: before)
    runs = {r.page: r.status for r in book.chapter_runs(root, build_dir, started_at=started,
                                                        cached_before=before)}
    assert runs["notebooks/01_ok"] == book.CACHED


def test_chapter_runs_without_a_saved_environment(tmp_path):
    root = _book_root(tmp_path, chapters=("01_a",))
    assert book.chapter_runs(root, root / "_build", started_at=0.0) == [
        book.ChapterRun("notebooks/01_a", book.NOT_RUN)]
    (root / "_build" / ".doctrees").mkdir(parents=True)
    (root / "_build" / ".doctrees" / "environment.pickle").write_bytes(b"not a pickle")
    assert book.chapter_runs(root, root / "_build", started_at=0.0)[0].status == book.NOT_RUN


def test_cache_records_of_a_missing_cache_is_empty(tmp_path):
    assert book.cache_records(tmp_path / "nothing") == set()


def test_failure_message_without_a_traceback():
    assert book.failure_message("", book.TIMED_OUT) == "a cell timed out"
    assert book.failure_message("", book.FAILED) == "the notebook raised an error"


def test_chapter_table_lists_seconds_status_and_totals():
    runs = [book.ChapterRun("notebooks/01_data", book.EXECUTED, 12.34),
            book.ChapterRun("notebooks/09_ablations", book.TIMED_OUT, 1800.4, "CellTimeoutError", "x"),
            book.ChapterRun("notebooks/02_teachers", book.CACHED, 301.0),
            book.ChapterRun("notebooks/10_new", book.NOT_RUN)]
    lines = book.chapter_table(runs).splitlines()
    assert lines[1].split() == ["chapter", "seconds", "status"]
    assert lines[2].split() == ["notebooks/01_data", "12.3", "executed"]
    assert lines[3].split() == ["notebooks/09_ablations", "1800.4", "TIMED", "OUT"]
    assert lines[4].split() == ["notebooks/02_teachers", "301.0", "cached"]
    assert lines[5].split() == ["notebooks/10_new", "-", "not", "run"]
    assert "1 executed, 1 cached, 1 timed out, 1 not run" in lines[6] and "1812.7 s" in lines[6]


# ------------------------------------------------- build_book with a stand-in jupyter-book

def _fake_jupyter_book(monkeypatch, root: Path, returncode: int = 0) -> list[dict]:
    """Replace the jupyter-book call by one that 'builds' the page and saves execution data."""
    calls: list[dict] = []
    (root / book.MATHJAX_DIR).mkdir(parents=True)
    (root / book.MATHJAX_DIR / "tex-chtml.js").write_text("// stand-in")
    monkeypatch.setattr(book, "jupyter_book_executable", lambda: "jupyter-book")

    def run(command, cwd, env):
        calls.append({"command": command, "env": env})
        build_dir = Path(command[command.index("--path-output") + 1]) / "_build"
        (build_dir / "html").mkdir(parents=True, exist_ok=True)
        (build_dir / "html" / "index.html").write_text("<html></html>")
        _write_environment(build_dir, time.time())
        return subprocess.CompletedProcess(command, returncode)

    monkeypatch.setattr(book.subprocess, "run", run)
    monkeypatch.delenv("SAMLP_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(book.TIMEOUT_ENV, raising=False)
    return calls


def test_build_book_reports_failed_chapters_but_succeeds_when_not_strict(tmp_path, monkeypatch, capsys):
    root = _book_root(tmp_path)
    calls = _fake_jupyter_book(monkeypatch, root)
    assert book.build_book(root) == 0
    assert calls[0]["env"]["SAMLP_THREADS"] == "1" and calls[0]["env"]["OMP_NUM_THREADS"] == "1"
    out, err = capsys.readouterr()
    assert "Chapter execution" in out and "notebooks/01_ok" in out
    assert "2 chapter(s) FAILED" in err
    assert "notebooks/03_error: failed after 2 s: ValueError: boom" in err
    assert "notebooks/04_slow: timed out after 1800 s" in err and "per-cell limit (1800 s)" in err
    assert "reports/notebooks/04_slow.err.log" in err
    assert "Book built in" in err and "notebooks/03_error, notebooks/04_slow" in err
    # Sphinx's environment is gone, so the next build re-reads (and re-runs) the failed pages.
    assert not (root / "_build" / ".doctrees").exists()


def test_build_book_strict_fails_on_a_failed_chapter(tmp_path, monkeypatch, capsys):
    root = _book_root(tmp_path)
    _fake_jupyter_book(monkeypatch, root)
    assert book.build_book(root, strict=True, smoke=True) == 1
    err = capsys.readouterr().err
    assert "Book build FAILED" in err and "--strict" in err


def test_build_book_passes_jupyter_book_errors_on(tmp_path, monkeypatch, capsys):
    root = _book_root(tmp_path)
    _fake_jupyter_book(monkeypatch, root, returncode=2)
    assert book.build_book(root) == 2
    assert "jupyter-book exit code 2" in capsys.readouterr().err


def test_build_book_all_chapters_fine(tmp_path, monkeypatch, capsys):
    root = _book_root(tmp_path, chapters=("01_ok", "02_cached"))
    _fake_jupyter_book(monkeypatch, root)
    monkeypatch.setenv("SAMLP_THREADS", "2")
    assert book.build_book(root, strict=True) == 0
    out, err = capsys.readouterr()
    assert "SAMLP_THREADS=2" in out and "Book built in" in out and "FAILED" not in out + err


def test_build_book_rejects_bad_thread_counts(tmp_path, monkeypatch):
    root = _book_root(tmp_path)
    _fake_jupyter_book(monkeypatch, root)
    monkeypatch.setenv("SAMLP_THREADS", "many")
    with pytest.raises(book.BookError, match="SAMLP_THREADS"):
        book.build_book(root)


# ---------------------------------------------------------- real builds of a tiny book (slow)

def _notebook(path: Path, title: str, *sources: str) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook = new_notebook(cells=[new_markdown_cell(f"# {title}")] + [new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    """A real book: an intro, a working notebook, one that raises and one that runs too long."""
    root = tmp_path / "tiny"
    root.mkdir()
    _notebook(root / "good.ipynb", "Good", "import torch\nprint('torch threads', torch.get_num_threads())")
    _notebook(root / "bad.ipynb", "Bad", "print('before the error')", "raise ValueError('boom')",
              "print('never printed')")
    _notebook(root / "slow.ipynb", "Slow", "import time\ntime.sleep(120)")
    (root / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   "  - file: good\n  - file: bad\n  - file: slow\n")
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    (root / "_config.yml").write_text(yaml.safe_dump({"title": "Tiny", "execute": config["execute"]}))
    (root / book.MATHJAX_DIR).mkdir(parents=True)
    (root / book.MATHJAX_DIR / "tex-chtml.js").write_text("// no npm needed")
    # Others edit samlp_lite while this runs; a stable package keeps "cached" meaning cached.
    package = _package(tmp_path)
    real = book.invalidate_stale_cache
    monkeypatch.setattr(book, "invalidate_stale_cache", lambda build_dir: real(build_dir, package))
    for name in ("SAMLP_THREADS", "OMP_NUM_THREADS", book.TIMEOUT_ENV, "SAMLP_SMOKE"):
        monkeypatch.delenv(name, raising=False)
    return root


def _table(out: str) -> dict[str, str]:
    rows = out[out.index("Chapter execution"):].splitlines()[2:]
    return {row.split()[0]: " ".join(row.split()[2:]) for row in rows if row.startswith("  ")
            and not row.strip()[0].isdigit() and len(row.split()) >= 3}


@pytest.mark.slow
def test_real_build_survives_a_failing_and_a_timed_out_chapter(tiny_book, capfd):
    assert book.build_book(tiny_book, timeout=5) == 0
    out, err = capfd.readouterr()
    html = tiny_book / "_build" / "html"
    for page in ("intro", "good", "bad", "slow"):
        assert (html / f"{page}.html").is_file(), page
    assert "torch threads 1" in (html / "good.html").read_text()
    assert "before the error" in (html / "bad.html").read_text()
    assert _table(out) == {"good": "executed", "bad": "FAILED", "slow": "TIMED OUT"}
    assert "bad: failed after" in err and "ValueError: boom" in err
    assert "slow: timed out after" in err and "after 5 seconds" in err
    assert (html / "reports" / "slow.err.log").is_file()

    # Strict: the same failures fail the build; the good chapter comes from the cache and
    # the failed ones are run again (not left as they were).
    assert book.build_book(tiny_book, timeout=5, strict=True) != 0
    out, err = capfd.readouterr()
    assert _table(out) == {"good": "cached", "bad": "FAILED", "slow": "TIMED OUT"}
    assert out.count("bad.ipynb: Executing notebook") == 1
    assert "Book build FAILED" in err and (html / "good.html").is_file()


def test_execution_data_survives_classes_it_cannot_import(tmp_path, monkeypatch):
    # Sphinx's environment may hold objects of a book-local extension (book/_ext), whose
    # module is importable only inside the build.
    import sys
    import types

    module = types.ModuleType("samlp_book_local_ext")
    node_class = type("Node", (), {"__module__": "samlp_book_local_ext"})
    module.Node = node_class
    monkeypatch.setitem(sys.modules, "samlp_book_local_ext", module)
    env = SimpleNamespace(nb_metadata={"notebooks/a": _exec(True, 1.5, 0.0)}, tocs={"x": node_class()})
    payload = pickle.dumps(env)
    monkeypatch.delitem(sys.modules, "samlp_book_local_ext")
    (tmp_path / ".doctrees").mkdir()
    (tmp_path / ".doctrees" / "environment.pickle").write_bytes(payload)
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(payload)
    assert book.execution_data(tmp_path)["notebooks/a"]["runtime"] == 1.5
