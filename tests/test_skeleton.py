"""Every subpackage imports, and the console command lists its verbs."""

import importlib
import subprocess
import sys

import pytest

SUBPACKAGES = [
    "spinapse",
    "spinapse.golden",
    "spinapse.golden.float_model",
    "spinapse.golden.integer_model",
    "spinapse.experiments",
    "spinapse.rtl",
    "spinapse.behavioral",
    "spinapse.cosim",
    "spinapse.boards",
    "spinapse.plan",
    "spinapse.data",
    "spinapse.commands",
]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_imports(name):
    assert importlib.import_module(name).__doc__


def test_golden_lives_in_the_golden_folder():
    import spinapse.golden

    assert spinapse.golden.__path__[0].replace("\\", "/").endswith("/golden")


def test_console_command_lists_train_and_run():
    out = subprocess.run(
        [sys.executable, "-m", "spinapse", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "train" in out and "run" in out
