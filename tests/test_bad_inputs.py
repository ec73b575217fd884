"""Table-driven: every bad input is refused with one `error:` line, the right exit code, no
traceback, and an untouched results directory (nothing created, nothing changed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmark.cli.main import main

SMOKE = ["--dataset", "fmnist", "--preset", "smoke", "--quiet", "--no-report"]


def run(*extra: str, methods: str = "pgd_at") -> list[str]:
    return ["run", *SMOKE, "--methods", methods, *extra]


def sets(*pairs: str, methods: str = "pgd_at") -> list[str]:
    return run(*[a for p in pairs for a in ("--set", p)], methods=methods)


# (argv, expected text in the one line); exit code 2 unless the case says otherwise.
CASES: list[tuple[list[str], str]] = [
    # threat model and attack
    (sets("eps=-0.1"), "eps=-0.1 must be > 0 and <= 1"),
    (sets("eps=2"), "eps=2.0 must be > 0 and <= 1"),
    (sets("eps=0"), "eps=0.0 must be > 0"),
    (sets("eps=nan"), "eps=nan must be finite"),
    (sets("eps=inf"), "eps=inf must be finite"),
    (sets("eps=-inf"), "eps=-inf must be finite"),
    (sets("eps=big"), "bad value 'big' for eps"),
    (sets("alpha=-1"), "alpha=-1.0 must be > 0"),
    (sets("alpha=0"), "alpha=0.0 must be > 0"),
    (sets("train_steps=0"), "train_steps=0 must be >= 1"),
    (sets("train_steps=-3"), "train_steps=-3 must be >= 1"),
    (sets("train_steps=2.5"), "bad value '2.5' for train_steps"),
    # optimisation
    (sets("lr=-0.1"), "lr=-0.1 must be > 0"),
    (sets("lr=0"), "lr=0.0 must be > 0"),
    (sets("lr=nan"), "lr=nan must be finite"),
    (sets("momentum=1.5"), "momentum=1.5 must be >= 0 and < 1"),
    (sets("weight_decay=-1"), "weight_decay=-1.0 must be >= 0"),
    (sets("epochs=0"), "epochs=0 must be >= 1"),
    (sets("epochs=2.5"), "bad value '2.5' for epochs"),
    (sets("batch_size=0"), "batch_size=0 must be >= 1"),
    (sets("lr_milestones=5:-1"), "must be (epoch >= 0, factor > 0) pairs"),
    (sets("lr_milestones=-1:0.1"), "must be (epoch >= 0, factor > 0) pairs"),
    (sets("lr_milestones=x"), "bad value 'x' for lr_milestones"),
    (sets("finetune_lr=0"), "finetune_lr=0.0 must be > 0"),
    # data sizes
    (sets("val_per_class=0"), "val_per_class=0 must be >= 1"),
    (sets("train_per_class=0"), "train_per_class=0 must be >= 1"),
    (sets("test_per_class=0"), "test_per_class=0 must be >= 1"),
    (sets("test_per_class=-5"), "test_per_class=-5 must be >= 1"),
    (sets("eval_batch_size=0"), "eval_batch_size=0 must be >= 1"),
    # validation and evaluation
    (sets("val_steps=0"), "val_steps=0 must be >= 1"),
    (sets("select_on=robust_median"), "select_on='robust_median' must be one of"),
    (sets("eval_pgd_steps=0"), "eval_pgd_steps=0 must be >= 1"),
    (sets("eval_cw_steps=0"), "eval_cw_steps=0 must be >= 1"),
    (sets("aa_version=foo"), "aa_version='foo' must be one of"),
    (sets("aa_attacks=apgd-xx"), "aa_attacks=('apgd-xx',) must be one of"),
    (sets("aa_version=custom", "aa_attacks="), "aa_version=custom needs aa_attacks"),
    (sets("aa_per_class=0"), "aa_per_class=0 must be >= 1"),
    (sets("aa_restarts=0"), "aa_restarts=0 must be >= 1"),
    (sets("aa_targets=0"), "aa_targets=0 must be >= 1"),
    (sets("aa_targets=10"), "aa_targets=10 must be <= 9"),
    (sets("aa_iters=0"), "aa_iters=0 must be >= 1"),
    (sets("amp=maybe"), "bad value 'maybe' for amp"),
    (sets("dataset=cifar10"), "unknown protocol field 'dataset'"),
    (sets("epoch=3"), "unknown protocol field 'epoch'"),
    # method hyperparameters
    (sets("trades.beta=-1", methods="trades"), "trades.beta=-1.0 must be >= 0"),
    (sets("trades.beta=nan", methods="trades"), "trades.beta=nan must be finite"),
    (sets("trades.bet=1", methods="trades"), "no hyperparameter 'bet'"),
    (sets("ham.drop_step=3", methods="ham"), "ham.drop_step=3 must be <= train_steps=2"),
    (sets("ham.drop_step=-1", methods="ham"), "ham.drop_step=-1 must be >= 0"),
    (sets("ham.reweight=foo", methods="ham"), "ham.reweight='foo' must be one of"),
    (sets("ham.begin_epoch=-1", methods="ham"), "ham.begin_epoch=-1 must be >= 0"),
    (sets("ham.begin_epoch=2", methods="ham"), "leaves no epoch to train"),
    (sets("frl_rwrm.lim=1", methods="frl_rwrm"), "frl_rwrm.lim=1.0 must be >= 0 and < 1"),
    (sets("frl_rwrm.cap=0.5", methods="frl_rwrm"), "frl_rwrm.cap=0.5 must be >= 0.98"),
    (sets("frl_rwrm.est_steps=0", methods="frl_rwrm"), "frl_rwrm.est_steps=0 must be >= 1"),
    (sets("frl_rwrm.alpha_frac=0", methods="frl_rwrm"), "frl_rwrm.alpha_frac=0.0 must be > 0"),
    (sets("frl_rwrm.tau1=-0.1", methods="frl_rwrm"), "frl_rwrm.tau1=-0.1 must be >= 0"),
    (sets("trades.beta=3"), "--set trades.beta is for a method that is not being run"),
    (sets("nosuch.x=1"), "unknown method 'nosuch'"),
    # --set syntax, seeds, names
    (run("--set", "noequals"), "--set expects key=value"),
    (run("--set", "=3"), "--set expects key=value"),
    (run("--seeds", "-1"), "seeds must be integers in 0..4294967295"),
    (run("--seeds", "4294967296"), "seeds must be integers in 0..4294967295"),
    (run("--seeds", "a"), "seeds must be integers"),
    (run("--seeds", ""), "seeds must be integers in 0..4294967295"),
    (run(methods="tradez"), "unknown method 'tradez' (did you mean 'trades'?)"),
    (run(methods=""), "no methods selected"),
    (["run", "--dataset", "fmnsit", "--methods", "pgd_at"], "did you mean 'fmnist'?"),
    (["run", "--dataset", "fmnist", "--preset", "quik", "--methods", "pgd_at"],
     "unknown preset 'quik' for fmnist"),
    (run("--device", "tpu"), "unknown device 'tpu'"),
    (run("--device", "cuda:999"), "not available here"),
    (run("--launcher", "submitit", "--slurm", "{bad"), "--slurm is not valid JSON"),
    (run("--launcher", "submitit", "--slurm", "[1]"), "--slurm must be a JSON object"),
    (run("--launcher", "slurm"), "invalid choice: 'slurm'"),
    (run("--bogus"), "unrecognized arguments: --bogus"),
    # report / status / list / new-method / eval
    (["report", "--dataset", "fmnsit"], "did you mean 'fmnist'?"),
    (["report", "--dataset", "fmnist", "--preset", "quik"], "unknown preset 'quik'"),
    (["report", "--format", "pdf"], "unknown report format(s) ['pdf']"),
    (["status", "--dataset", "fmnsit"], "did you mean 'fmnist'?"),
    (["list", "foo"], "invalid choice: 'foo'"),
    (["new-method", "Bad-Name"], "must be a lowercase identifier"),
    (["new-method", "trades"], "a method named 'trades' exists already"),
    (["eval", "--dataset", "fmnist", "--preset", "smoke"], "pass exactly one of --checkpoint"),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]] | None:
    if not root.exists():
        return None
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def _check_one_line(code: int, err: str, expected: str, exit_code: int = 2) -> None:
    lines = err.strip().splitlines()
    assert code == exit_code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and expected in lines[0], err


@pytest.mark.parametrize("argv,expected", CASES, ids=[" ".join(c[0][-2:]) for c in CASES])
def test_bad_input_is_one_line_and_touches_nothing(argv: list[str], expected: str,
                                                   tmp_path: Path, capsys) -> None:
    results = tmp_path / "results"
    if argv[0] in ("run", "report", "status"):
        argv = [*argv, "--results", str(results)]
    code = main(argv)
    _check_one_line(code, capsys.readouterr().err, expected)
    assert not results.exists()  # refused before any directory was created


def _file_cases(tmp: Path) -> list[tuple[list[str], str, int]]:
    """Cases that need files on disk: config files, results paths, data and checkpoints."""
    a_file = tmp / "a_file"
    a_file.write_text("x")
    bad_yaml = tmp / "bad.yaml"
    bad_yaml.write_text("eps: [0.1\n")
    list_yaml = tmp / "list.yaml"
    list_yaml.write_text("- eps\n- 0.1\n")
    neg_yaml = tmp / "neg.yaml"
    neg_yaml.write_text("eps: -1\n")
    garbage = tmp / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    bad_data = tmp / "bad_data"
    raw = bad_data / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03truncated")
    results = str(tmp / "results")
    return [
        (run("--config", str(tmp / "missing.yaml"), "--results", results), "not found", 2),
        (run("--config", str(tmp), "--results", results), "is a directory", 2),
        (run("--config", str(bad_yaml), "--results", results), "is not valid YAML at line 2", 2),
        (run("--config", str(list_yaml), "--results", results), "must hold a mapping", 2),
        (run("--config", str(neg_yaml), "--results", results), "eps=-1.0 must be > 0", 2),
        (run("--results", str(a_file)), "is a file, not a directory", 2),
        (run("--results", str(a_file / "sub")), "is not usable", 2),
        (run("--data-dir", str(bad_data), "--results", results), "truncated or corrupt", 2),
        (["report", "--results", results], "no finished runs for fmnist/quick", 2),
        (["report", "--results", results, "--out", str(a_file)], "is a file", 2),
        (["status", "--results", str(a_file)], "is a file, not a results directory", 2),
        (["new-method", "my_new", "--dir", str(tmp / "nope")], "does not exist", 2),
        (["new-method", "my_new", "--dir", str(a_file)], "is not a directory", 2),
        (["eval", "--dataset", "fmnist", "--preset", "smoke", "--checkpoint",
          str(tmp / "none.pt"), "--results", results], "not found", 2),
        (["eval", "--dataset", "fmnist", "--preset", "smoke", "--checkpoint", str(garbage),
          "--results", results], "refused to load", 2),
    ]


def test_the_table_is_large_enough(tmp_path: Path) -> None:
    assert len(CASES) + len(_file_cases(tmp_path)) >= 60


def test_bad_files_are_one_line_and_touch_nothing(tmp_path: Path, capsys) -> None:
    cases = _file_cases(tmp_path)
    for argv, expected, exit_code in cases:
        before = {p: _snapshot(tmp_path / p) for p in ("results", "a_file", "bad_data")}
        code = main(argv)
        _check_one_line(code, capsys.readouterr().err, expected, exit_code)
        assert {p: _snapshot(tmp_path / p) for p in before} == before, argv


def test_conflicting_settings_refused_before_work(smoke_results: Path, capsys) -> None:
    before = _snapshot(smoke_results)
    code = main(sets("lr=0.5") + ["--results", str(smoke_results)])
    _check_one_line(code, capsys.readouterr().err,
                    "holds a run with other settings (protocol.lr: 0.01 -> 0.5)")
    assert _snapshot(smoke_results) == before


def test_read_only_results_dir_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """Root ignores permission bits, so a read-only filesystem is injected (EROFS)."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system", str(tmp_path / "results"))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    code = main(run("--results", str(tmp_path / "results")))
    _check_one_line(code, capsys.readouterr().err, "Read-only file system")


def test_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    code = main(["--debug", *sets("eps=-1"), "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and err.strip().endswith(
        "error: eps=-1.0 must be > 0 and <= 1 (fix with --set or the preset)")


def test_broken_pipe_exits_quietly() -> None:
    import subprocess
    import sys

    proc = subprocess.run(f"{sys.executable} -m benchmark list presets | head -1", shell=True,
                          capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout.startswith("[") and "Traceback" not in proc.stderr, proc.stderr


def test_debug_after_the_command_too(tmp_path: Path, capsys) -> None:
    assert main([*sets("eps=-1"), "--results", str(tmp_path), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main([*sets("eps=-1"), "--results", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_status_of_a_missing_results_directory_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["status", "--results", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "does not exist" in err
    assert not missing.exists()  # status never creates it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["status", "--results", str(empty)]) == 0
    assert f"no runs under {empty}" in capsys.readouterr().out
