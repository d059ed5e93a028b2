"""A corpus of malformed recipes (tests/corpus/malformed/*.yaml): `plan` and `build` of each exit 2
within 10 s, print one error line and no traceback, and write nothing (cache, build, temp, cwd).

A `# args: ...` first line adds command-line arguments (bad -j, bad overrides). All cases run in one
child process (fast: Hydra and pydantic are imported once); each case's stdout/stderr are captured at
the file-descriptor level, so a traceback printed by any library is seen too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.common import ROOT
from helpers.processes import left_after

CORPUS = ROOT / "tests" / "corpus" / "malformed"
LIMIT_S = 10.0

RUNNER = r"""
import json, os, shlex, sys, tempfile, time
from pathlib import Path
from recipekit.cli import main

work = Path(sys.argv[1])
for i, case in enumerate(sys.argv[2:]):
    path = Path(case)
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    extra = shlex.split(first[len("# args:"):]) if first.startswith("# args:") else []
    for command in ("plan", "build"):
        base = work / f"{i}-{command}"
        os.chdir(work / "cwd")
        argv = [command, str(path), *extra, "--cache", str(base / "cache")]
        argv += ["--out", str(base / "out")] if command == "build" else []
        with tempfile.TemporaryFile() as log:
            saved = os.dup(1), os.dup(2)
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(log.fileno(), 1); os.dup2(log.fileno(), 2)
            t0 = time.monotonic()
            try:
                code = main(argv)
            except BaseException as exc:  # a traceback would reach the user
                import traceback
                traceback.print_exc()
                code = -1
            seconds = time.monotonic() - t0
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
        print(json.dumps({"case": path.name, "command": command, "code": code, "seconds": seconds,
                          "output": text, "wrote": base.exists()}), flush=True)
"""


def _cases() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


def test_corpus_has_at_least_60_cases():
    assert len(_cases()) >= 60


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case (plan, then build) in one child process; one JSON line per run."""
    tmp = tmp_path_factory.mktemp("corpus")
    corpus = tmp / "recipes"
    shutil.copytree(CORPUS, corpus)
    (tmp / "work" / "cwd").mkdir(parents=True)
    (tmp / "tmpdir").mkdir()
    before = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    env = {**os.environ, "TMPDIR": str(tmp / "tmpdir"), "RECIPEKIT_CACHE": str(tmp / "work" / "default-cache")}
    cases = [str(corpus / p.name) for p in _cases()]
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp / "work"), *cases],
        capture_output=True,
        text=True,
        env=env,
        timeout=LIMIT_S * 2 * len(cases),
        check=False,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 * len(cases), proc.stdout[-2000:] + proc.stderr[-3000:]
    after = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    return {"rows": rows, "tmp": tmp, "recipes_changed": before != after}


def test_every_case_exits_2_quickly_with_one_clear_line(results):
    bad = []
    for row in results["rows"]:
        text = row["output"]
        if row["code"] != 2 or row["seconds"] > LIMIT_S or "Traceback" in text or "recipekit: error:" not in text:
            bad.append(f"{row['case']} {row['command']}: exit {row['code']} in {row['seconds']:.1f}s: {text[-600:]}")
    assert not bad, "\n".join(bad)


def test_messages_name_the_file_and_never_library_internals(results):
    internals = ("dict[str,any]", "pydantic", "omegaconf.", "hydra.", "yaml.constructor", "Error:", "errors.pydantic")
    bad = []
    for row in results["rows"]:
        line = next(x for x in row["output"].splitlines() if x.startswith("recipekit: error:"))
        argument = f"recipekit {row['command']}: " in line or "--targets" in line  # an option, named by argparse
        names_file = str(results["tmp"] / "recipes") in line or argument
        if not names_file or any(s in line for s in internals):
            bad.append(f"{row['case']} {row['command']}: {line}")
    assert not bad, "\n".join(bad)


def test_nothing_is_written(results):
    wrote = [f"{r['case']} {r['command']}" for r in results["rows"] if r["wrote"]]
    tmp = results["tmp"]
    assert not wrote, wrote
    assert not list((tmp / "work" / "cwd").iterdir())
    assert not (tmp / "work" / "default-cache").exists()
    assert not list((tmp / "tmpdir").iterdir())
    assert not results["recipes_changed"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_bytes(b"name: x\n" + b"#" * (2 << 20)), "expected at most 1048576 (1 MiB)"),
        (lambda p: p.write_bytes(b"name: '" + b"x" * (50 << 20) + b"'\n"), "expected at most 1048576 (1 MiB)"),
    ],
)
def test_recipe_over_1_mib_is_refused_before_reading(tmp_path, cli, make, expected):
    path = tmp_path / "big.yaml"
    make(path)
    code, _, err = cli("plan", path, "--cache", tmp_path / "c")
    assert code == 2 and expected in err and str(path) in err, err
    assert not (tmp_path / "c").exists()


def test_yml_suffix_gets_a_clear_message(tmp_path, cli):
    path = tmp_path / "recipe.yml"
    path.write_text("name: x\nsource: {kind: ultralytics, init: random}\ntargets: {ort: {}}\n")
    code, _, err = cli("plan", path, "--cache", tmp_path / "c")
    assert code == 2 and "rename it recipe.yaml" in err, err


@pytest.mark.parametrize("option", ["--cache", "--out"])
def test_cache_or_out_that_is_a_file_is_refused(tmp_path, cli, option):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    recipe = CORPUS.parent.parent.parent / "recipes" / "yolo11n.yaml"
    args = {"--cache": tmp_path / "c", "--out": tmp_path / "o", option: blocker / "sub"}
    code, _, err = cli("build", recipe, "--cache", args["--cache"], "--out", args["--out"])
    assert code == 2 and f"{blocker} is a file, expected a folder" in err, err
    assert "Traceback" not in err


def test_schema_into_a_closed_pipe_prints_no_traceback():
    proc = subprocess.run(
        f"{sys.executable} -m recipekit schema | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout == '{\n "$defs"'[:10] or len(proc.stdout) == 10
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


CONSOLE_CASES = [
    "037-name-a-number-list.yaml",  # refused while composing
    "064-samples-missing-file.yaml",  # refused while keying, after the plan
    "086-args-override-unknown-key.yaml",  # refused in an override
]


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_console_command_refuses_quietly_at_any_jobs(tmp_path, jobs):
    """The `recipekit` command itself on a fresh cache: it starts its workers' forkserver before composing
    (a likely build), then stops it silently: one line, exit 2, no traceback, nothing left behind."""
    import uuid

    tag = uuid.uuid4().hex
    recipes = tmp_path / "recipes"
    shutil.copytree(CORPUS, recipes)
    (tmp_path / "tmpdir").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmpdir"), "RECIPEKIT_TEST_TAG": tag}
    exe = Path(sys.executable).with_name("recipekit")
    bad = []
    for name in CONSOLE_CASES:
        first = (recipes / name).read_text().split("\n", 1)[0]
        extra = first[len("# args:") :].split() if first.startswith("# args:") else []
        base = tmp_path / name
        cmd = [str(exe), "build", str(recipes / name), *extra, "-j", jobs, "--cache", str(base / "c")]
        proc = subprocess.run(
            [*cmd, "--out", str(base / "o")], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        lines = proc.stderr.strip().splitlines()
        if proc.returncode != 2 or "Traceback" in proc.stderr or len(lines) != 1 or base.exists():
            bad.append(f"{name} -j {jobs}: exit {proc.returncode}: {proc.stderr[-800:]}")
    assert not bad, "\n".join(bad)
    assert not list((tmp_path / "tmpdir").iterdir())  # the forkserver's temporary folders too
    assert not left_after(tag, 2)
