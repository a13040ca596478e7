"""The configuration (validation, overrides) and the train / run verbs end to end."""

import json

import pytest

from spinapse.cli import main
from spinapse.config import (
    ExperimentConfig,
    apply_overrides,
    field_help,
    load_config,
    parse_override,
)


def test_default_config_is_valid_and_matches_the_documented_choice():
    cfg = load_config()
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.tasks.kind == "permuted" and cfg.tasks.count == 5
    assert cfg.data.source == "digits" and cfg.data.n_train == 3000
    assert cfg.train.batch_size == 100 and cfg.train.lr == 0.005
    assert cfg.method.kind == "meta" and cfg.method.meta > 0


def test_packaged_toml_and_model_defaults_agree():
    # A field left out of a user's TOML gets the same value as in the packaged default.
    assert load_config() == ExperimentConfig()
    assert (load_config().train.epochs, load_config().method.meta) == (40, 4.5)


def test_override_values_are_toml():
    assert parse_override("train.epochs=5") == (["train", "epochs"], 5)
    assert parse_override("model.hidden=[256, 128]") == (["model", "hidden"], [256, 128])
    assert parse_override("data.source=mnist") == (["data", "source"], "mnist")
    assert parse_override('data.source="fashion"') == (["data", "source"], "fashion")
    assert parse_override("train.eval_every_epoch=true") == (["train", "eval_every_epoch"], True)
    raw = apply_overrides({"train": {"epochs": 3}}, ["train.epochs=7", "method.meta=0.5"])
    assert raw == {"train": {"epochs": 7}, "method": {"meta": 0.5}}
    with pytest.raises(ValueError, match="field.sub=value"):
        parse_override("train.epochs")
    with pytest.raises(ValueError, match="is not a table"):
        apply_overrides({"seed": 1}, ["seed.x=2"])
    cfg = load_config(None, ["model.hidden=[64, 32]", "method.meta=[1, 2, 0]"])
    assert cfg.model.hidden == [64, 32]
    assert cfg.method.meta_per_layer(3) == [1.0, 2.0, 0.0]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=0", r"train\.epochs: Input should be greater than or equal to 1"),
        ("train.lr=-1", r"train\.lr: Input should be greater than 0"),
        ("method.meta=-0.5", r"method\.meta: Value error, m must be in \[0, 1000\]"),
        (
            "model.hidden=[0]",
            r"model\.hidden: Value error, each hidden width must be in "
            r"\[1, 16384\]",
        ),
        (
            "tasks.kind=rotated",
            r"tasks\.kind: Input should be 'permuted', 'split' or "
            r"'sequence'",
        ),
        ("data.n_train=5000", r"data\.n_train: Input should be less than or equal to 4999"),
        (
            "train.epochs_typo=3",
            r"train\.epochs_typo: unknown field; did you mean .train\.epochs.\?",
        ),
    ],
)
def test_invalid_values_name_the_field_and_range(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_cli_reports_config_errors_cleanly(capsys, tmp_path):
    assert main(["train", "--set", "train.batch_size=1"]) == 2
    err = capsys.readouterr().err
    assert "spinapse train: error:" in err and "train.batch_size" in err
    assert "greater than or equal to 2" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "configuration file not found" in capsys.readouterr().err
    assert main(["train", "--set", "data.source=mnist"]) == 2
    assert "data.mnist_dir must name the folder" in capsys.readouterr().err


def test_help_lists_every_field_with_its_range(capsys):
    text = field_help()
    assert "train.epochs = 40    (int in [1, 1000])" in text
    assert "tasks.kind = \"permuted\"    ('permuted' | 'split' | 'sequence')" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--set FIELD=VALUE" in out and "method.ewc_lambda" in out


def test_train_from_a_toml_file_with_ewc(tmp_path, capsys):
    cfg = tmp_path / "ewc.toml"
    cfg.write_text(
        f'name = "ewc-small"\nresults_dir = "{tmp_path.as_posix()}"\n'
        '[model]\nhidden = [32]\n[train]\nepochs = 1\n[tasks]\nkind = "split"\ncount = 2\n'
        '[data]\nn_train = 600\n[method]\nkind = "ewc"\newc_samples = 200\n'
    )
    assert main(["train", "--config", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ewc" in out and "classes-0-1-2-3-4" in out
    doc = json.loads((tmp_path / "ewc-small" / "results.json").read_text())
    assert doc["config"]["method"]["kind"] == "ewc"
    assert [len(r) for r in doc["runs"]["ewc"]["acc"]] == [2, 2]
    assert (tmp_path / "ewc-small" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_prints_both_runs_for_each_seed_and_jobs_do_not_change_results(tmp_path, capsys):
    sets = ["model.hidden=[32]", "train.epochs=1", "tasks.count=2", "data.n_train=600"]
    argv = ["run", "--no-progress", "--seeds", "0", "1", "--jobs", "2", "--cosim-steps", "0"]
    for s in [*sets, f'results_dir="{tmp_path.as_posix()}"']:
        argv += ["--set", s]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "m=0" in out and "m=" + format(load_config().method.meta, "g") in out
    assert "over seeds [0, 1]" in out and "mean of tasks 1-1" in out
    summary = json.loads((tmp_path / "default" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    for seed in (0, 1):
        doc = json.loads((tmp_path / "default" / f"seed-{seed}" / "results.json").read_text())
        assert doc["config"]["seed"] == seed
        finals = [round(100 * a, 6) for a in doc["runs"]["m=0"]["acc"][-1]]
        assert summary["runs"]["m=0"]["final_percent"][seed] == finals
    # The same seed in one process gives the same bytes as in the worker processes.
    parallel = (tmp_path / "default" / "seed-1" / "results.json").read_bytes()
    argv = ["run", "--no-progress", "--seeds", "1", "--jobs", "1", "--cosim-steps", "0"]
    for s in [*sets, f'results_dir="{tmp_path.as_posix()}"']:
        argv += ["--set", s]
    assert main(argv) == 0
    assert (tmp_path / "default" / "seed-1" / "results.json").read_bytes() == parallel
    assert main(["run", "--set", "method.kind=ewc"]) == 2
    assert main(["run", "--jobs", "0"]) == 2


def _idx_folder(root, seed):
    import numpy as np

    from spinapse.data.idx import write_idx

    rng = np.random.default_rng(seed)
    for prefix, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        images[:, labels, 3] = 255  # one bright pixel row per class: learnable
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def test_train_mnist_then_fashion_from_idx_folders(tmp_path, capsys):
    mnist = _idx_folder(tmp_path / "mnist", 0)
    fashion = _idx_folder(tmp_path / "fashion", 1)
    argv = ["train", "--no-progress"]
    for s in (
        "data.source=mnist-fashion",
        "tasks.kind=sequence",
        "model.hidden=[16]",
        "train.epochs=1",
        "train.batch_size=10",
        "train.test_batch_size=10",
        f'data.mnist_dir="{mnist.as_posix()}"',
        f'data.fashion_dir="{fashion.as_posix()}"',
        f'results_dir="{tmp_path.as_posix()}"',
    ):
        argv += ["--set", s]
    assert main(argv) == 0
    assert "1 mnist" in capsys.readouterr().out
    doc = json.loads((tmp_path / "default" / "results.json").read_text())
    assert doc["runs"]["m=" + format(load_config().method.meta, "g")]["task_names"] == [
        "mnist",
        "fashion",
    ]
    (fashion / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    assert main(argv) == 2
    assert "t10k-labels-idx1-ubyte.gz: corrupt gzip stream" in capsys.readouterr().err
