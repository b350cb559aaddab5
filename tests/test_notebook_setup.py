"""samlp_lite.notebook: the Colab install it would run, and the bootstrap cell every notebook starts with."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

from samlp_lite import notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIGURED_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _install_lines(commands):
    return [c for c in commands if "pip" in c and "install" in c]


@pytest.fixture
def simulated_colab(monkeypatch, tmp_path):
    """The Colab branch without Colab: SAMLP_SIMULATE_COLAB=1, a fresh clone folder, a recording runner."""
    monkeypatch.setenv(notebook.SIMULATE_COLAB_ENV, "1")
    monkeypatch.chdir(tmp_path)  # restored after the test, whatever setup does
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(notebook, "_PREPARED", False)
    return tmp_path / "clone"


def test_simulated_colab_setup_records_the_install_instead_of_running_it(simulated_colab):
    assert notebook.on_colab()
    commands = []
    device = notebook.setup(runner=commands.append, clone_dir=simulated_colab, verbose=False)
    assert isinstance(device, torch.device)
    assert commands, "on Colab the set-up installs the package"

    clone = [c for c in commands if c[:2] == ["git", "clone"]]
    assert len(clone) == 1 and CONFIGURED_URL in clone[0] and clone[0][-1] == str(simulated_colab)

    installs = _install_lines(commands)
    package = [c for c in installs if "-e" in c]
    assert len(package) == 1 and "--no-deps" in package[0] and package[0][-1] == str(simulated_colab)
    requirements = [arg for c in installs for arg in c[c.index("install") + 1:] if not arg.startswith("-")]
    assert "torch-geometric==2.8.1" in requirements and "ogb==1.3.6" in requirements
    named = {notebook._name(r) for r in requirements if r != str(simulated_colab)}
    assert not named & {"torch", "torchvision", "torchaudio"}, "Colab's own torch (and its GPU) must stay"
    assert commands.index(clone[0]) < commands.index(package[0]), "clone before installing the clone"


def test_simulated_colab_setup_moves_into_the_clones_notebooks(simulated_colab):
    def fake_clone(command):  # a runner that 'clones' by creating the folders
        if command[:2] == ["git", "clone"]:
            (Path(command[-1]) / "notebooks").mkdir(parents=True)
            (Path(command[-1]) / "results").mkdir()

    notebook.setup(runner=fake_clone, clone_dir=simulated_colab, verbose=False)
    assert Path.cwd() == simulated_colab / "notebooks"
    assert (Path("..") / "results").resolve() == (simulated_colab / "results").resolve()


def test_an_existing_clone_is_not_cloned_again(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    commands = notebook.colab_install_commands(tmp_path)
    assert not [c for c in commands if "clone" in c]
    assert any("--no-deps" in c for c in commands)


def test_requirements_add_what_colab_lacks_but_never_torch():
    everything_there = notebook.colab_requirements(installed=lambda name: True)
    assert everything_there == ["torch-geometric==2.8.1", "ogb==1.3.6"]
    nothing_there = notebook.colab_requirements(installed=lambda name: False)
    assert "seaborn==0.13.2" in nothing_there and not [r for r in nothing_there if notebook._name(r) == "torch"]


def test_outside_colab_setup_installs_nothing(monkeypatch, capsys):
    monkeypatch.delenv(notebook.SIMULATE_COLAB_ENV, raising=False)
    monkeypatch.delenv("SAMLP_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        commands = []
        device = notebook.setup(seed=3, threads=1, runner=commands.append)
        assert commands == [] and device.type in ("cpu", "cuda")
        assert torch.get_num_threads() == 1
        line = capsys.readouterr().out.strip()
        assert line.count("\n") == 0 and "samlp_lite" in line and "smoke mode" in line and str(device) in line
    finally:
        torch.set_num_threads(before)


def test_threads_of_a_batch_runner_or_samlp_threads_win(monkeypatch):
    monkeypatch.delenv(notebook.SIMULATE_COLAB_ENV, raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # samlp-lite reproduce --jobs sized this kernel
        monkeypatch.delenv("SAMLP_THREADS", raising=False)
        notebook.setup(threads=1, verbose=False)
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("SAMLP_THREADS", "1")
        notebook.setup(threads=4, verbose=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_repository_is_the_one_setting_of_config_yml(tmp_path):
    assert notebook.repository() == (CONFIGURED_URL, "main")
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/fork.git\n  branch: dev\n")
    assert notebook.repository(config) == ("https://example.org/fork.git", "dev")
    assert "https://example.org/fork.git" in notebook.bootstrap_source(config)
    config.write_text("title: x\n")
    with pytest.raises(ValueError, match="repository"):
        notebook.repository(config)


# ------------------------------------------------------------------------------ the notebooks

def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_book_notebook_and_the_batch_notebook_are_checked():
    import yaml

    toc = yaml.safe_load((Path(__file__).resolve().parent.parent / "_toc.yml").read_text())
    listed = {c["file"].split("/")[-1] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("notebooks/")}
    names = {p.stem for p in NOTEBOOKS}
    assert listed <= names and "experiment" in names, sorted(listed - names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_bootstrap(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert _source(code[0]) == notebook.bootstrap_source(), (
        "the first code cell must be samlp_lite.notebook.bootstrap_source(), identical in every notebook")
    assert "remove-input" in code[0].get("metadata", {}).get("tags", [])
    assert CONFIGURED_URL in _source(code[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exactly_one_parameters_cell(path):
    tagged = [c for c in _cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0]["cell_type"] == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_lines_pin_torch_geometric_and_never_install_torch(path):
    for cell in _cells(path):
        for line in _source(cell).splitlines():
            if "pip" in line and "install" in line:
                if "torch-geometric" in line or "torch_geometric" in line:
                    assert "torch-geometric==" in line, line
                assert not any(word in ("torch", '"torch"', "'torch'") for word in line.split()), line


def test_bootstrap_cell_runs_outside_colab(monkeypatch, capsys):
    monkeypatch.delenv(notebook.SIMULATE_COLAB_ENV, raising=False)
    before = torch.get_num_threads()
    namespace: dict = {}
    try:
        exec(notebook.bootstrap_source(), namespace)
    finally:
        torch.set_num_threads(before)
    assert isinstance(namespace["device"], torch.device)
    assert "samlp_lite" in capsys.readouterr().out
    assert os.environ.get(notebook.SIMULATE_COLAB_ENV) is None
