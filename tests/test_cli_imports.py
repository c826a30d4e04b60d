"""An app or handler that cannot be imported: one line that says what to do.

Run from the wrong directory, given a file path instead of ``module:function``, naming
something that is not a function or app, or missing a dependency: each is one ``error:``
line, and the worker stops before it opens the queue. Where the working directory or
$PYTHONPATH matter, the command runs as a process of its own.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from durq.cli import main

_names = itertools.count()


def one_error(result: Result | subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def project(root: Path, name: str = "tour") -> Path:
    """A project directory holding ``tour.py`` with a handler ``send`` and an app ``app``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(
        "import durq\n"
        "app = durq.App()\n"
        "LIMIT = 3\n"
        "def send(job):\n"
        "    return {'sent': job.payload}\n"
    )
    return root


def worker(
    cwd: Path, db: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durq", "--db", f"sqlite:///{db}", "worker", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_wrong_directory_names_the_module_the_directory_and_pythonpath(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    project(tmp_path / "project")
    db = tmp_path / "durq.db"
    env = {**python_env, "PYTHONPATH": python_env["PYTHONPATH"]}
    done = worker(tmp_path, db, "--handler", "tour:send", "--burst", env=env)
    assert done.returncode == 1
    line = one_error(done)
    assert line.startswith("error: cannot import handler 'tour:send': no module named 'tour'")
    assert f"current directory {tmp_path}" in line
    assert f"PYTHONPATH {env['PYTHONPATH']}" in line
    assert "run durq from the directory that holds tour.py" in line and "set PYTHONPATH" in line
    assert not db.exists()  # stopped before it opened the queue

    # Doing as it says works: from the project's directory, or with PYTHONPATH.
    inside = worker(tmp_path / "project", db, "--handler", "tour:send", "--burst", env=env)
    assert inside.returncode == 0, inside.stderr
    with_path = {**env, "PYTHONPATH": os.pathsep.join(["project", env["PYTHONPATH"]])}
    followed = worker(tmp_path, db, "--handler", "tour:send", "--burst", env=with_path)
    assert followed.returncode == 0, followed.stderr


def test_the_project_directory_seen_from_above_is_named(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    # ./tour/tour.py run from ./ : Python imports the directory "tour" as an empty package.
    project(tmp_path / "tour")
    done = worker(tmp_path, tmp_path / "durq.db", "--app", "tour:app", env=python_env)
    assert done.returncode == 1
    line = one_error(done)
    assert f"tour here is the directory {tmp_path / 'tour'}, not a module" in line
    assert f"PYTHONPATH={tmp_path / 'tour'}" in line


HOLDS = "tour:send, from the directory that holds tour.py"


@pytest.mark.parametrize(
    ("cwd", "spec", "advice"),
    [
        ("elsewhere", "../tour/tour.py:send", f"{HOLDS} (../tour)"),
        (".", "tour/tour.py:send", f"{HOLDS} (tour)"),
        ("tour", "tour.py:send", "tour:send, from this directory"),
    ],
)
def test_a_file_path_is_answered_with_the_module_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cwd: str, spec: str, advice: str
) -> None:
    project(tmp_path / "tour")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / cwd)
    db = tmp_path / "durq.db"
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{db}", "worker", "--handler", spec])
    assert result.exit_code == 1
    line = one_error(result)
    assert f"bad handler {spec!r}: that is a file path; use the module form, {advice}" in line
    assert "TypeError" not in line and "package" not in line
    if spec.startswith(".."):
        assert line.endswith("or with PYTHONPATH=../tour")
    assert not db.exists()


def test_a_file_in_a_package_is_named_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["worker", "--app", "myapp/tasks.py:app"])
    assert "use the module form, myapp.tasks:app, from this directory" in one_error(result)


def test_not_a_function_or_app_says_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cli_hint_mod_{next(_names)}"
    project(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    db = f"sqlite:///{tmp_path}/durq.db"
    as_handler = CliRunner().invoke(main, ["--db", db, "worker", "--handler", f"{name}:LIMIT"])
    assert one_error(as_handler).endswith(f"'{name}:LIMIT': it is an int, not a function")
    as_app = CliRunner().invoke(main, ["--db", db, "worker", "--app", f"{name}:send"])
    assert one_error(as_app).endswith(f"'{name}:send': it is a function, not a durq.App")
    task = CliRunner().invoke(
        main, ["--db", db, "enqueue", "--app", f"{name}:LIMIT", "--task", "x"]
    )
    assert one_error(task).endswith("it is an int, not a durq.App")


def test_a_missing_dependency_is_told_apart_from_a_missing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cli_hint_mod_{next(_names)}"
    (tmp_path / f"{name}.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = CliRunner().invoke(main, ["worker", "--handler", f"{name}:send"])
    line = one_error(result)
    assert f"{name} imports 'no_such_dependency_xyz', which this Python" in line
    assert sys.executable in line and "install it" in line
    assert "run durq from the directory" not in line  # the module itself was found
