"""Teachers of distillation methods: a DistillMethod's teacher is a dependency run (the teacher
method on the protocol's teacher model, same seed), planned before it, shared by every method
that declares the same teacher, frozen during training, in the spec (run key) and in the cost;
a checkpoint file can replace it; a failed teacher leaves its students not run; a protocol
without a teacher model is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.cli.main import main
from benchmark.common.errors import UserError
from benchmark.core.method import DistillMethod, TrainContext, register_method
from benchmark.planning.plan import plan

SMOKE = ["run", "--dataset", "fmnist", "--preset", "smoke", "--seeds", "0", "--quiet",
         "--no-report"]


@register_method("_test_distill")
class _Distill(DistillMethod):
    """Test-only: CE plus KL to the frozen teacher's clean softmax."""

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, ctx: TrainContext) -> Tensor:
        teacher = ctx.teacher
        assert teacher is not None and not teacher.training
        assert not any(p.requires_grad for p in teacher.parameters())
        with torch.no_grad():
            target = F.softmax(teacher(x), 1)
        logits = model(x)
        return F.cross_entropy(logits, y) + F.kl_div(F.log_softmax(logits, 1), target,
                                                     reduction="batchmean")


@register_method("_test_distill_b")
class _DistillB(_Distill):
    """Test-only: a second student of the same teacher."""


def _labels(waves) -> list[list[str]]:
    return [sorted(r.label for r in wave) for wave in waves]


def test_one_teacher_run_serves_every_student_and_is_in_their_keys():
    waves = plan(dataset="fmnist", preset="smoke", methods=["_test_distill", "_test_distill_b"],
                 seeds=[0])
    assert _labels(waves) == [["trades[teacher]"], ["_test_distill", "_test_distill_b"]]
    teacher = waves[0][0]
    assert teacher.protocol.model == "small_cnn_wide" and teacher.job.seed == 0
    for student in waves[1]:
        assert student.teacher is teacher or student.teacher.spec.key == teacher.spec.key
        assert student.spec.teacher == {"method": "trades[teacher]", "run_key": teacher.spec.key}
    other = plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
                 overrides={"teacher_model": "small_cnn"})
    assert other[1][0].spec.key != waves[1][0].spec.key  # another teacher: another run


def test_students_train_from_the_teacher_and_count_its_cost(tmp_path: Path) -> None:
    results = tmp_path / "r"
    assert main([*SMOKE, "--methods", "_test_distill", "--results", str(results)]) == 0
    root = results / "fmnist" / "smoke"
    teacher = json.loads((root / "trades[teacher]" / "seed0" / "record.json").read_text())
    student = json.loads((root / "_test_distill" / "seed0" / "record.json").read_text())
    assert student["spec"]["teacher"]["run_key"] == teacher["spec"]["run_key"]
    train = student["train"]
    assert train["teacher_seconds"] == pytest.approx(teacher["train"]["seconds_with_warm_start"])
    assert train["teacher_passes"] == teacher["train"]["passes_with_warm_start"] > 0
    assert train["passes_with_warm_start"] == train["passes"] + train["teacher_passes"]

    # the report shows the teacher but never ranks it: its own model is named apart
    from benchmark.report.build import summarize
    from benchmark.report.captions import facts
    from benchmark.report.collect import collect
    from benchmark.report.table_model import build_table

    coll = collect(results, "fmnist", "smoke")
    assert coll.unranked == ["trades[teacher]"]
    summary = summarize(coll)
    assert not summary.loc[summary["method"] == "trades[teacher]", "ranked"].any()
    info = facts(coll, build_table(summary, coll))
    assert info.model == "small_cnn" and info.teachers == "trades[teacher] (small_cnn_wide)"

    # the same teacher from a checkpoint file: no teacher run, the file's digest in the key
    weights = tmp_path / "teacher.pt"
    torch.save(torch.load(root / "trades[teacher]" / "seed0" / "model_best.pt"), weights)
    setting = ["--set", f"_test_distill.teacher_file={weights}"]
    file_plan = plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
                     method_overrides={"_test_distill": {"teacher_file": str(weights)}})
    assert _labels(file_plan) == [["_test_distill"]]
    assert file_plan[0][0].spec.teacher["sha256"] and "run_key" not in file_plan[0][0].spec.teacher
    assert main([*SMOKE, "--methods", "_test_distill", "--results", str(tmp_path / "f"),
                 *setting]) == 0


def test_a_failed_teacher_leaves_its_students_not_run(tmp_path: Path, capsys) -> None:
    code = main([*SMOKE, "--methods", "_test_distill", "--results", str(tmp_path / "r"),
                 "--set", "trades.beta=1e30"])
    err = capsys.readouterr().err
    assert code == 1 and "trades[teacher]/seed0: failed" in err
    assert "_test_distill/seed0: not run: its teacher fmnist/smoke/trades[teacher]/seed0" in err


def test_bad_teacher_settings_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs a teacher model: --set teacher_model"):
        plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
             overrides={"teacher_model": None})
    with pytest.raises(UserError, match="teacher_file .* does not exist"):
        plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
             method_overrides={"_test_distill": {"teacher_file": str(tmp_path / "no.pt")}})


def test_teachers_are_named_by_their_students_protocol():
    waves = plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
                 sweep={"epochs": ["3", "4"]})
    assert _labels(waves)[0] == ["trades[teacher,epochs=3]", "trades[teacher,epochs=4]"]
    recipe = plan(dataset="cifar10", preset="full", methods=["fair_ard", "absld"], seeds=[0],
                  recipe=True)  # two recipes: two teachers, no clash
    assert _labels(recipe)[0] == ["trades[teacher,recipe=absld]",
                                  "trades[teacher,recipe=fair_ard]"]


def test_a_teacher_file_is_keyed_by_its_content_not_its_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "copy" / "b.pt"
    torch.save({"model": {"w": torch.ones(2)}}, a)
    b.parent.mkdir()
    shutil.copy(a, b)  # the same bytes elsewhere
    keys = [plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
                 method_overrides={"_test_distill": {"teacher_file": str(p)}})[0][0].spec.key
            for p in (a, b)]
    assert keys[0] == keys[1]
    torch.save({"model": {"w": torch.zeros(2)}}, b)
    assert plan(dataset="fmnist", preset="smoke", methods=["_test_distill"], seeds=[0],
                method_overrides={"_test_distill": {"teacher_file": str(b)}}
                )[0][0].spec.key != keys[0]


def test_a_setting_the_code_added_sets_a_run_aside_instead_of_conflicting(tmp_path: Path):
    """An older spec.json without a newer protocol field (or hyperparameter): a code change."""
    from benchmark.runs.claim import compare_spec

    run = plan(dataset="fmnist", preset="smoke", methods=["trades"], seeds=[0],
               results=str(tmp_path))[0][0]
    old = run.spec.as_dict()
    old["run_key"] = "0" * 16
    del old["protocol"]["eps"]  # as if the code had added `eps` since
    run.paths.root.mkdir(parents=True)
    run.paths.spec.write_text(json.dumps(old))
    run.paths.done.write_text("{}")
    assert compare_spec(run.paths, run.spec).action == "set_aside"
    old["protocol"]["eps"] = 0.3  # a real other setting
    run.paths.spec.write_text(json.dumps(old))
    assert compare_spec(run.paths, run.spec).action == "conflict"
