"""The conda environment carries the same pins as requirements.lock."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def lock_pins():
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_conda_env_pins_agree_with_the_lock():
    lock = lock_pins()
    assert lock["torch"] == "2.14.1" and lock["torchvision"] == "0.29.1"
    for env_file in (REPO / "envs").glob("*.yaml"):
        env = yaml.safe_load(env_file.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        pinned = [p for p in pip if "==" in p]
        assert pinned, env_file
        for spec in pinned:
            name, version = spec.split("==")
            assert lock.get(name.lower()) == version, f"{env_file.name}: {spec} vs lock {lock.get(name.lower())}"


def test_pyproject_ranges_admit_the_locked_versions():
    from packaging.specifiers import SpecifierSet
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = lock_pins()
    for dep in deps:
        name, spec = re.match(r"^([A-Za-z0-9_.-]+)(.*)$", dep).groups()
        assert lock[name.lower()] in SpecifierSet(spec), f"{name}{spec} excludes locked {lock[name.lower()]}"


def test_make_reproduce_writes_the_report_where_the_readme_says():
    """`make reproduce` (README line 1) ends with results/report.html (a paper-mini path
    once crept into its recipe and the command failed after a full run)."""
    import subprocess

    recipe = subprocess.run(["make", "-n", "reproduce"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    report_lines = [line for line in recipe.splitlines() if "--report" in line]
    assert report_lines and all(line.rstrip().endswith("--report results/report.html") for line in report_lines)
    assert "results/report.html" in (REPO / "README.md").read_text()
