"""The command line as a new user meets it (issue 14): help that explains, output checked before
work, results never replaced by another configuration, Ctrl-C that says how to resume, unused
fields refused, cards that cite papers, a card's values in Verilog-A.

Runs are tiny (784-32-10, 600 training digits, 1 epoch, 2-3 tasks) so the file takes well
under a minute; the interrupt test uses a real process and a real SIGINT.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import openvaf_py
import pytest

from spinapse.behavioral.card import list_cards, load_card
from spinapse.behavioral.va_card import card_va
from spinapse.cli import main
from spinapse.config import field_names
from spinapse.experiments.report import percent

TINY = ["model.hidden=[32]", "train.epochs=1", "data.n_train=600", "tasks.count=2"]


def argv(verb: str, tmp_path: Path, *sets: str, extra=()) -> list[str]:
    out = [verb, "--no-progress", *extra]
    for s in [*TINY, f'results_dir="{tmp_path.as_posix()}"', *sets]:
        out += ["--set", s]
    return out


def test_top_level_help_does_not_import_torch():
    code = (
        "import sys\nfrom spinapse.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'spinapse.experiments.experiment' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_train_help_gives_meaning_units_and_ranges(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text
    assert "synapse.write_width = 1e-08    (float in (0, 0.001])" in text
    assert "digital: write pulse width, s" in text
    assert "device: magneto-ionic gate pulse |V_g|, V" in text
    assert "method.meta = 4.5    (each m in [0, 1000])" in text
    assert "model.hidden = [512, 512]    (1 to 8 widths, each in [1, 16384])" in text
    assert 'name = "default"    (1 to 100 of A-Z a-z 0-9 _ . -)' in text
    assert "--resume" in text and "--overwrite" in text and "--checkpoints {all,last}" in text
    # Every field has a one-line meaning under it.
    lines = text.splitlines()
    fields = [i for i, line in enumerate(lines) if re.match(r"^  [a-z_.]+ = ", line)]
    assert len(fields) == len(field_names()) >= 31
    assert all(lines[i + 1].startswith("      ") for i in fields)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("train.epoch=3", "train.epochs"),
        ("epochs=3", "train.epochs"),
        ("trian.epochs=3", "train"),
        ("synapse.gate_volt=2", "synapse.gate_voltage"),
    ],
)
def test_key_typo_suggests_the_field(typo, suggestion, capsys):
    assert main(["train", "--set", typo]) == 2
    err = capsys.readouterr().err
    assert f"unknown field; did you mean {suggestion!r}?" in err
    assert "Extra inputs" not in err


def test_unwritable_results_dir_stops_before_any_work(capsys):
    # data.source=mnist without a folder would fail when the data are loaded: the output check
    # comes first, so its error is the one reported.
    code = main(
        ["train", "--set", "results_dir=/dev/null/x", "--set", "data.source=mnist", "--no-progress"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "results_dir: cannot write results into /dev/null/x/default" in err
    assert "Traceback" not in err and "mnist_dir" not in err


def test_another_configuration_never_replaces_results(tmp_path, capsys):
    assert main(argv("train", tmp_path)) == 0
    first = (tmp_path / "default" / "results.json").read_bytes()
    claim = json.loads((tmp_path / "default" / "config.json").read_text())
    assert claim["config"]["train"]["epochs"] == 1
    capsys.readouterr()
    assert main(argv("train", tmp_path, "train.lr=0.01")) == 2
    err = capsys.readouterr().err
    assert "holds results of another configuration (train.lr: 0.005 -> 0.01)" in err
    assert "--set name=" in err and "--overwrite" in err
    assert (tmp_path / "default" / "results.json").read_bytes() == first
    # The same configuration again is fine (same bytes); --overwrite replaces.
    assert main(argv("train", tmp_path)) == 0
    assert (tmp_path / "default" / "results.json").read_bytes() == first
    assert main(argv("train", tmp_path, "train.lr=0.01", extra=["--overwrite"])) == 0
    doc = json.loads((tmp_path / "default" / "results.json").read_text())
    assert doc["config"]["train"]["lr"] == 0.01
    # spinapse run into a folder of another configuration is refused as well.
    assert main(argv("run", tmp_path, "train.lr=0.02")) == 2
    assert "another configuration" in capsys.readouterr().err


def test_unused_fields_are_refused_and_recorded(tmp_path, capsys):
    sets = ['synapse.card="mtj_mi_stt"', 'synapse.mode="device"', "method.meta=1.35"]
    assert main(argv("train", tmp_path, *sets)) == 2
    err = capsys.readouterr().err
    assert "method.meta = 1.35: not used by synapse.mode = 'device'" in err
    assert main(argv("train", tmp_path, "synapse.write_width=2e-9")) == 2
    assert "synapse.write_width = 2e-09: not used by a golden run" in capsys.readouterr().err
    assert main(argv("train", tmp_path, "method.ewc_lambda=10")) == 2
    assert main(argv("run", tmp_path, "method.ewc_lambda=10")) == 2
    assert main(argv("train", tmp_path)) == 0
    doc = json.loads((tmp_path / "default" / "results.json").read_text())
    assert "method.ewc_lambda" in doc["unused_fields"]
    assert "synapse.write_width" in doc["unused_fields"]
    assert "method.meta" not in doc["unused_fields"]
    assert doc["environment"]["cpu_capability"] in {"DEFAULT", "AVX2", "AVX512", "NO AVX", "VSX"}


def test_device_mode_records_unused_fields_and_says_what_failed_writes_count(tmp_path, capsys):
    sets = ["model.hidden=[8]"]
    extra = ["--synapse", "mtj_mi_stt", "--mode", "device"]
    assert main(argv("train", tmp_path, *sets, extra=extra)) == 0
    out = capsys.readouterr().out
    assert "trial pulses that did not switch (by design" in out
    doc = json.loads((tmp_path / "default" / "results.json").read_text())
    assert {"method.meta", "train.weight_decay", "synapse.max_tries"} <= set(doc["unused_fields"])
    dev = doc["runs"]["device-mtj_mi_stt"]["device"]
    n = re.search(r"device writes (\d+) pulses \((\d+) flips; (\d+) of them", out)
    assert [int(g) for g in n.groups()] == [
        dev["device_writes"],
        dev["flips"],
        dev["failed_writes"],
    ]
    assert dev["failed_writes"] == dev["device_writes"] - dev["flips"]


def test_seeds_must_be_distinct(capsys):
    assert main(["run", "--seeds", "0", "0"]) == 2
    assert "--seeds must be distinct, got [0, 0]" in capsys.readouterr().err


def test_resume_of_a_finished_run_keeps_the_training_time(tmp_path, capsys):
    assert main(argv("train", tmp_path, extra=["--checkpoints", "last"])) == 0
    first = json.loads((tmp_path / "default" / "timing.json").read_text())["seconds"]
    ckpt = tmp_path / "default" / "checkpoints" / "m=4.5"
    assert sorted(p.name for p in ckpt.iterdir()) == ["task-1.pt"]
    assert main(argv("train", tmp_path, extra=["--resume"])) == 0
    assert json.loads((tmp_path / "default" / "timing.json").read_text())["seconds"] == first
    assert "summed over the sessions" in capsys.readouterr().out


def test_plurals_and_one_based_tasks(tmp_path, capsys):
    assert main(argv("train", tmp_path)) == 0
    out = capsys.readouterr().out
    assert "after 2 tasks, 1 epoch each" in out
    rows = (tmp_path / "default" / "accuracy.csv").read_text().splitlines()
    assert rows[1].split(",")[1:3] == ["1", "1"] and rows[-1].split(",")[1:3] == ["2", "2"]


def test_percent_prints_one_digit_for_one_value():
    # 47.85 cannot be stored exactly; both of its float neighbours print the same digit.
    assert percent(47.85) == percent(47.85 + 1e-12) == percent(47.85 - 1e-12) == "47.9"
    assert percent(14.649999999999999) == "14.7" and percent(26.04) == "26.0"


def test_ctrl_c_prints_how_to_resume_and_resume_finishes_the_run(tmp_path):
    # 6 tasks of 100 short epochs: several seconds of work after the first checkpoint, so the
    # signal lands inside the task loop (the start-up of each process costs more).
    sets = ["model.hidden=[32]", "train.epochs=100", "data.n_train=600", "tasks.count=6"]
    sets.append(f'results_dir="{tmp_path.as_posix()}"')
    cmd = [sys.executable, "-m", "spinapse", "train", "--no-progress"]
    for s in sets:
        cmd += ["--set", s]
    # As from a terminal: SIGINT at its default (a test run in the background inherits it
    # ignored, and Python then installs no KeyboardInterrupt handler).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = tmp_path / "default" / "checkpoints" / "m=4.5" / "task-0.pt"
    while not first.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted. Every finished task is checkpointed" in err
    assert err.rstrip().endswith("--resume")
    assert not (tmp_path / "default" / "results.json").exists()
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, check=True)
    assert "after 6 tasks" in again.stdout
    resumed = json.loads((tmp_path / "default" / "results.json").read_text())["runs"]
    # The resumed run equals one that was never interrupted.
    assert main([*cmd[3:], "--set", "name=fresh"]) == 0
    assert json.loads((tmp_path / "fresh" / "results.json").read_text())["runs"] == resumed


SOURCE_OK = re.compile(r"\(\d{4}\)|arXiv:\d{4}\.\d{4,5}|github\.com/|design (value|rule)|derived")


# A folder path from the root of some machine (``/x/y/``): users have only the card and the papers.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[\w.-]+/)+")


@pytest.mark.parametrize("path", list_cards(), ids=lambda p: Path(p).stem)
def test_every_card_value_cites_a_paper_or_a_stated_design_rule(path):
    card = load_card(path)
    for section, sources in card.sources.items():
        for key, source in sources.items():
            where = f"{card.name} [{section}].{key}: {source!r}"
            assert "devices.md" not in source and not ABSOLUTE_PATH.search(source), where
            assert SOURCE_OK.search(source), where
    assert not ABSOLUTE_PATH.search(Path(path).read_text())


@pytest.mark.parametrize("name", ["mtj_mi_stt", "mtj_mi_sot", "dw_notched"])
def test_device_va_writes_the_card_values_as_parameter_defaults(name, tmp_path, capsys):
    card = load_card(name)
    out = tmp_path / f"{name}.va"
    assert main(["device", "va", name, "-o", str(out)]) == 0
    assert "parameter defaults from card" in capsys.readouterr().out
    module = openvaf_py.compile_va(str(out))[0]
    defaults = {k.lower(): v for k, v in module.get_param_defaults().items()}
    values = {k: v for sec in card.values.values() for k, v in sec.items()}
    expected_module, _, _ = card_va(card)
    assert module.name == expected_module
    checked = 0
    for key, value in values.items():
        if key.lower() in defaults:
            assert defaults[key.lower()] == pytest.approx(value, rel=1e-11), key
            checked += 1
    assert checked >= (20 if card.kind == "mtj_synapse" else 17)


def test_sun_branch_matches_the_macrospin_relaxation_time():
    # Sun, Phys. Rev. B 62, 570 (2000): the code's prefactor against an independent route, the
    # LLG relaxation time tau_D = 1 / (alpha gamma mu0 Hk) of the same free layer (macrospin,
    # mu0 Hk = 2 Delta kB T / (Ms V)), with the card's eta in place of P / (1 + P^2).
    import math

    from spinapse.behavioral.mtj_read import MTJRead
    from spinapse.behavioral.mtj_switching import (
        MTJSwitching,
        critical_current_stt,
        sun_prefactor,
    )

    card = load_card("mtj_mi_stt")
    sw, rd = MTJSwitching.from_card(card), MTJRead.from_card(card)
    k_sun = float(sun_prefactor(sw.Delta0, sw.P_spin, sw.moment(rd.area)))
    ic0 = float(critical_current_stt(sw.Delta0, sw.alpha, sw.eta, sw.T))
    mean_time_2ic0 = 1.0 / (k_sun * ic0)
    gamma, kb = 1.76085963e11, 1.380649e-23
    mu0_hk = 2 * sw.Delta0 * kb * sw.T / (sw.Ms * sw.t_F * rd.area)
    tau_d = 1.0 / (sw.alpha * gamma * mu0_hk)
    log_term = 0.5772156649 + math.log(math.pi**2 * sw.Delta0 / 4)
    eta_sun = sw.P_spin / (1 + sw.P_spin**2)
    # 2e-3: Sun's prefactor takes g = 2 (mu_B / e); the electron's gamma has g = 2.0023.
    assert mean_time_2ic0 == pytest.approx(tau_d * log_term / 2 * sw.eta / eta_sun, rel=2e-3)
    assert mean_time_2ic0 == pytest.approx(7.06e-9, rel=1e-3)  # docs/devices.md


def test_characterize_help_lists_defaults_and_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["device", "characterize", "--help"])
    text = capsys.readouterr().out
    assert "(default: 2000)" in text and "(default: 0)" in text
    assert "results/device/<card name>/" in text
    for name in ("psw_vs_amplitude", "rv_curves", "psw_vs_c", "dw_conductance_vs_pulses"):
        assert f"{name}.csv/.png" in text


def test_training_cosim_verdict_line():
    from spinapse.cosim.tb_training_case import verdict

    same = {"writes": 7010, "retries": 0, "failures": 0}
    out = {"counters": same, "golden_counters": same, "mismatches": [], "cycles_per_step": 4124.4}
    assert verdict(out, "digital", 500).startswith(
        "PASS: digital mode, 500 steps: RTL bit-exact against the integer golden model"
    )
    bad = {**out, "golden_counters": {**same, "writes": 7011}}
    assert (
        verdict(bad, "digital", 500)
        == "FAIL: digital mode, 500 steps: writes: rtl 7010, golden 7011"
    )
