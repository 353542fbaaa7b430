"""Per-subject post-processing: the two built-in post-processors, their setup (protocol counts,
options, refusals), ``Predictor``/``cmi predict --postprocess`` and the OOF estimate of
``cmi ensemble --postprocess``."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from cmi_core.analysis.postprocess_estimate import postprocess_answers, postprocess_estimate
from cmi_core.cli import main
from cmi_core.data.schema import GESTURES
from cmi_core.errors import ConfigError, RunError
from cmi_core.postprocess import Protocol
from cmi_core.predict.gateway import arrival_order, replay
from cmi_core.predict.postprocessing import (
    build_postprocessor,
    parse_options,
    protocol_counts,
    run_protocol,
    train_protocol,
)
from cmi_core.predict.predictor import Predictor, predict_file
from cmi_core.rundir.reader import RunDir

pytestmark = pytest.mark.usefixtures("postprocessors")

A, B, C = GESTURES[0], GESTURES[1], GESTURES[2]


def _probs(**named: float) -> dict[str, np.ndarray]:
    """A ``"gesture"`` output with the given probabilities, the rest spread evenly."""
    p = np.full(len(GESTURES), (1 - sum(named.values())) / (len(GESTURES) - len(named)))
    for gesture, value in named.items():
        p[GESTURES.index(gesture)] = value
    return {"gesture": p}


def _once_each() -> Protocol:
    """Every gesture once per subject."""
    return Protocol(GESTURES, np.ones(len(GESTURES)), subjects=3)


# -- subject_assignment ----------------------------------------------------------------------


def test_assignment_gives_a_full_class_to_the_runner_up():
    post = build_postprocessor("subject_assignment", _once_each())
    assert post(_probs(**{A: 0.9, B: 0.05}), "s1") == A
    # argmax A again, but A's one slot is better spent on the first sequence
    assert post(_probs(**{A: 0.6, B: 0.3}), "s1") == B


def test_assignment_keeps_state_per_subject():
    post = build_postprocessor("subject_assignment", _once_each())
    assert post(_probs(**{A: 0.9, B: 0.05}), "s1") == A
    assert post(_probs(**{A: 0.6, B: 0.3}), "s2") == A  # s2 has not used its A yet


def test_assignment_with_more_sequences_than_slots_still_answers():
    post = build_postprocessor("subject_assignment", _once_each())
    assert [post(_probs(**{g: 0.9}), "s1") for g in GESTURES] == list(GESTURES)
    # a 19th sequence: the slots are repeated, so A is free again
    assert post(_probs(**{A: 0.9}), "s1") == A


def _composite_protocol() -> Protocol:
    composites = [("o1", A, "b1"), ("o1", B, "b1"), ("o2", B, "b1")]
    counts = np.zeros(len(GESTURES))
    counts[:2] = [1, 2]
    return Protocol(GESTURES, counts, 3, composites=composites, composite_counts=[1, 1, 1])


def test_assignment_over_composite_classes_answers_their_gestures():
    post = build_postprocessor(
        "subject_assignment", _composite_protocol(), available=("gesture", "composite")
    )
    gesture = _probs(**{A: 0.9})
    assert post({**gesture, "composite": np.array([0.1, 0.8, 0.1])}, "s1") == B
    assert post({**gesture, "composite": np.array([0.1, 0.7, 0.2])}, "s1") == B  # o2's B
    assert post({**gesture, "composite": np.array([0.2, 0.7, 0.1])}, "s1") == A
    # without a composite output (auto) the same post-processor assigns gestures
    assert post(gesture, "s2") == A


def test_a_post_processor_needing_missing_outputs_is_refused():
    with pytest.raises(RunError, match=r"needs the output\(s\) composite, which the run"):
        build_postprocessor("subject_assignment", _composite_protocol(), {"target": "composite"})
    with pytest.raises(RunError, match="needs composite protocol counts"):
        build_postprocessor(
            "subject_assignment",
            _once_each(),
            {"target": "composite"},
            available=("gesture", "composite"),
        )


def test_options_are_checked_by_the_plugin_options_class():
    with pytest.raises(ConfigError, match="target: unknown value 'composit'"):
        build_postprocessor("subject_assignment", _once_each(), {"target": "composit"})
    with pytest.raises(ConfigError, match="strenght: unknown key"):
        build_postprocessor("subject_prior", _once_each(), {"strenght": 1.0})
    assert parse_options(["strength=2.5", "target=gesture", 'x="y"']) == {
        "strength": 2.5,
        "target": "gesture",
        "x": "y",
    }


# -- subject_prior ---------------------------------------------------------------------------


def test_prior_boosts_an_owed_class_and_not_without_strength():
    for strength, expected in ((1.0, B), (0.0, A)):
        post = build_postprocessor(
            "subject_prior", _once_each(), {"strength": strength, "ramp_sequences": 1}
        )
        for _ in range(len(GESTURES)):  # A answered every time: every other class is owed
            assert post(_probs(**{A: 0.9}), "s1") == A
        assert post(_probs(**{A: 0.5, B: 0.45}), "s1") == expected
        assert post(_probs(**{A: 0.5, B: 0.45}), "s2") == A  # nothing is owed by a new subject


# -- the protocol ----------------------------------------------------------------------------


def test_protocol_counts_are_the_training_data_means(tiny_run):
    run_dir, data_dir = tiny_run
    frame = RunDir(run_dir).oof()
    protocol = run_protocol(run_dir)
    assert protocol.subjects == frame["subject"].n_unique()
    assert protocol.sequences_per_subject == pytest.approx(len(frame) / protocol.subjects)
    text = GESTURES.index("Text on phone")
    expected = (frame["gesture"] == "Text on phone").sum() / protocol.subjects
    assert protocol.gesture_counts[text] == pytest.approx(expected)

    full = train_protocol(data_dir / "train.csv")
    assert full.composites and len(full.composites) == len(full.composite_counts)
    assert full.composite_counts.sum() == pytest.approx(full.gesture_counts.sum())
    per_gesture = np.bincount(
        full.composite_gesture, weights=full.composite_counts, minlength=len(GESTURES)
    )
    np.testing.assert_allclose(per_gesture, full.gesture_counts)


def test_protocol_needs_sequences():
    with pytest.raises(RunError, match="no training sequences"):
        protocol_counts(
            pl.DataFrame(
                {"subject": [], "gesture": []},
                schema=[("subject", pl.String), ("gesture", pl.String)],
            )
        )


# -- prediction --------------------------------------------------------------------------------


def test_predictor_keeps_subject_state_across_calls_like_cmi_predict(tiny_run, tmp_path):
    run_dir, data_dir = tiny_run
    predictor = Predictor.from_run(run_dir, postprocess="subject_assignment")
    answers = replay(predictor.predict, data_dir, seed=3)
    out = predict_file(
        [run_dir], data_dir, tmp_path / "s.csv", postprocess="subject_assignment", order_seed=3
    )
    assert dict(pl.read_csv(out).iter_rows()) == answers
    again = Predictor.from_run(run_dir, postprocess="subject_assignment")
    assert replay(again.predict, data_dir, seed=3) == answers  # deterministic for an order


def test_a_run_without_the_needed_outputs_is_refused_in_one_line(tiny_run):
    run_dir, _ = tiny_run
    with pytest.raises(RunError, match=r"needs the output\(s\) composite") as caught:
        Predictor.from_run(
            run_dir, postprocess="subject_assignment", postprocess_options={"target": "composite"}
        )
    assert "\n" not in str(caught.value)


def test_cli_refuses_bad_postprocess_arguments(tiny_run, tmp_path, capsys):
    run_dir, data_dir = tiny_run
    base = ["predict", str(run_dir), "--data", str(data_dir), "--out", str(tmp_path / "s.csv")]
    cases = {
        "unknown postprocessor 'subject_asignment' (did you mean 'subject_assignment'?)": [
            "--postprocess",
            "subject_asignment",
        ],
        "--order-seed orders the sequences for a post-processor": ["--order-seed", "1"],
        "--postprocess-option needs --postprocess NAME": ["--postprocess-option", "a=1"],
    }
    for message, extra in cases.items():
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


# -- the OOF estimate ----------------------------------------------------------------------------


def test_the_replay_never_reads_the_replayed_labels(tiny_run):
    """Labels shuffled within each fold (the other folds' counts unchanged): same answers."""
    run_dir, _ = tiny_run
    frame = RunDir(run_dir).oof()
    probs = frame.select(GESTURES).to_numpy()
    rng = np.random.default_rng(0)
    shuffled = frame.with_columns(
        pl.col("gesture").shuffle(seed=int(rng.integers(1 << 30))).over("fold")
    )
    assert not shuffled["gesture"].equals(frame["gesture"])
    for name in ("subject_assignment", "subject_prior"):
        answers = postprocess_answers(frame, probs, name, seed=5)
        np.testing.assert_array_equal(answers, postprocess_answers(shuffled, probs, name, seed=5))
        assert (answers >= 0).all()


def test_a_fold_s_own_labels_play_no_part_in_its_answers(tiny_run):
    """Every label of the replayed fold rewritten: that fold's answers do not change (its
    protocol is counted from the other folds)."""
    run_dir, _ = tiny_run
    frame = RunDir(run_dir).oof()
    probs = frame.select(GESTURES).to_numpy()
    answers = postprocess_answers(frame, probs, "subject_assignment", seed=1)
    for fold in (0, 1):
        rewritten = frame.with_columns(
            gesture=pl.when(pl.col("fold") == fold).then(pl.lit(A)).otherwise(pl.col("gesture"))
        )
        again = postprocess_answers(rewritten, probs, "subject_assignment", seed=1)
        rows = (frame["fold"] == fold).to_numpy()
        np.testing.assert_array_equal(again[rows], answers[rows])


def test_the_replay_serves_each_fold_in_the_gateway_order(tiny_run):
    """Fold by fold, the answers are those of a post-processor called in ``arrival_order``."""
    run_dir, _ = tiny_run
    frame = RunDir(run_dir).oof()
    probs = frame.select(GESTURES).to_numpy()
    answers = postprocess_answers(frame, probs, "subject_assignment", seed=2)
    for fold in (0, 1):
        rows = frame.with_row_index().filter(pl.col("fold") == fold)
        protocol = run_protocol(run_dir, exclude_fold=fold)
        post = build_postprocessor("subject_assignment", protocol)
        ids = rows["sequence_id"].to_list()
        for sequence_id in arrival_order(ids, 2):
            i = rows["index"][ids.index(sequence_id)]
            got = post({"gesture": probs[i]}, frame["subject"][i])
            assert got == GESTURES[answers[i]]


def test_several_runs_get_a_row_each_an_ensemble_row_and_an_interval_over_runs(tiny_run, tmp_path):
    from tests.inference.test_ensemble import disagreeing_run

    run_dir, _ = tiny_run
    other = disagreeing_run(run_dir, tmp_path / "other")
    estimate = postprocess_estimate([run_dir, other], "subject_prior", orders=2)
    assert [row.name for row in estimate.rows] == [str(run_dir), str(other), "ensemble"]
    low, high = estimate.pooled_interval()
    mean = np.mean([row.gains.mean() for row in estimate.runs])
    assert low <= mean <= high
    assert "over runs" in estimate.table()


def test_cmi_ensemble_reports_the_score_without_and_with(tiny_run, capsys):
    run_dir, _ = tiny_run
    estimate = postprocess_estimate([run_dir], "subject_assignment", orders=3)
    (row,) = estimate.rows
    assert len(row.with_orders) == 3 and row.name == str(run_dir)
    low, high = row.interval()
    assert low <= row.gains.mean() <= high
    assert main(["ensemble", str(run_dir), "--postprocess", "subject_prior", "--orders", "2"]) == 0
    out = capsys.readouterr().out
    assert main(["ensemble", str(run_dir), "--orders", "2"]) == 2
    assert "--orders replays the OOF sequences for a post-processor" in capsys.readouterr().err
    assert "subject_prior: 2 arrival order(s)" in out
    assert "without    with    gain  95% interval" in out


# -- the notebook and the bundle -----------------------------------------------------------------


def test_the_notebook_json_carries_the_post_processor():
    from cmi_core.predict.notebook import notebook_json

    text = notebook_json(
        ["a"], "slug", postprocess="subject_prior", postprocess_options={"strength": 2.0}
    )
    code = "".join(json.loads(text)["cells"][1]["source"])
    assert 'POSTPROCESS = "subject_prior"' in code
    assert 'POSTPROCESS_OPTIONS = {"strength": 2.0}' in code
    assert "POSTPROCESS = None" in "".join(
        json.loads(notebook_json(["a"], "s"))["cells"][1]["source"]
    )


def test_cmi_bundle_refuses_a_bad_post_processor_before_writing(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    out = tmp_path / "upload"
    base = ["bundle", str(run_dir), "--out", str(out), "--no-download", "--postprocess"]
    assert main([*base, "subject_prior", "--postprocess-option", "strength=-1"]) == 2
    assert "postprocess subject_prior: strength: must be >= 0, got -1" in capsys.readouterr().err
    assert main([*base, "subject_assignment", "--postprocess-option", "target=composite"]) == 2
    assert "needs the output(s) composite" in capsys.readouterr().err
    assert not out.exists()


def test_cmi_plugins_lists_the_post_processors(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {(row["kind"], row["name"]): row for row in json.loads(capsys.readouterr().out)}
    for name in ("subject_assignment", "subject_prior"):
        assert rows[("postprocessor", name)]["status"] == "active"
