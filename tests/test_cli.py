"""The CLI in real subprocesses: help, bad input (one line, exit 2, no traceback), list, run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workloads import get_workload, list_workloads

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbench", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout)


@pytest.mark.parametrize("sub", ["run", "report", "env", "list"])
def test_help(sub: str) -> None:
    r = cli(sub, "--help")
    assert r.returncode == 0 and "usage: cnnbench" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["run", "--workloads", "alexnet"], "unknown workload 'alexnet'"),
    (["run", "--frameworks", "caffe"], "unknown framework 'caffe'"),
    (["run", "--batch-sizes", "0"], "positive integer"),
    (["run", "--batch-sizes", "abc"], "positive integer"),
    (["run", "--budget", "-1"], "positive number"),
    (["run", "--modes", "eval", "--frameworks", "null"], "unknown mode"),
    (["run", "--devices", "tpu", "--frameworks", "null"], "bad device"),
    (["run", "--devices", "gpu:0,1", "--frameworks", "null"], "joined with '+' (gpu:0+1)"),
    (["run", "--devices", "cpu*2", "--scaling", "gustafson", "--frameworks", "null"],
     "unknown scaling"),
    (["run", "--frameworks", "null", "--nnodes", "2"], "needs --rdzv-endpoint"),
    (["run", "--frameworks", "null", "--nnodes", "2", "--rdzv-endpoint", "h"], "HOST:PORT"),
    (["run", "--frameworks", "null", "--node-rank", "1"], "go with --nnodes"),
    (["run", "--frameworks", "null", "--nnodes", "2", "--rdzv-endpoint", "h:1",
      "--node-rank", "2"], "is not below --nnodes 2"),
    (["run", "--frameworks", "null", "--nnodes", "2", "--rdzv-endpoint", "h:1",
      "--node-addrs", "a,b,c"], "lists 3 nodes"),
    (["run", "--frameworks", "null", "--partition", "p"], "need --launcher slurm"),
    (["run", "--frameworks", "null", "--detach"], "--detach needs --launcher slurm"),
    (["run", "--launcher", "slurm", "--nnodes", "2"], "--nodes-per-job"),
    (["run", "--launcher", "slurm", "--time", "half an hour"], "Slurm time limit"),
    (["run", "--launcher", "kubernetes"], "invalid choice"),
    (["run", "--python", "pytorch"], "KEY=VALUE"),
    (["run", "--python", "pytorch=/no/such/python"], "no such interpreter"),
    (["run", "--variants", "turbo"], "unknown variant"),
    (["run", "--variants-file", "/no/such.toml"], "not found"),
    (["run", "--frameworks", "null", "--resume", "nope", "--results-dir", "/tmp/cnb-none"],
     "no such run"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["run", "--frameworks", "null", "--target-ci", "1.5"], "target CI must be a fraction"),
    (["run", "--frameworks", "null", "--interleave", "--target-ci", "1.5"], "target CI"),
    (["report", "/no/such/results"], "no such results"),
    (["report", "--prices", "/no/such.toml"], "prices file not found"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_input_is_one_line(args: list[str], needle: str) -> None:
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]


def test_dry_run_prints_the_default_plan_and_its_estimated_wall_time() -> None:
    r = cli("run", "--dry-run")
    assert r.returncode == 0, r.stderr
    # The default plan: every framework, 52 cells of 3 runs each (ResNet-20 on three builds:
    # each framework's GEMM probe on each), about an hour with the kernel probes (one per
    # framework, build, mode and precision: 24).
    assert "\n156 cells\n" in r.stdout
    assert re.search(r"estimated wall time: about (4[0-9]|5[0-9]|6[0-5]) min \(156 cells \+ 12 "
                     r"GEMM probes \+ 24 kernel probes, 5 s budget", r.stdout), r.stdout[-600:]
    one = cli("run", "--dry-run", "--repeat", "1")
    assert "\n52 cells\n" in one.stdout
    mine = cli("run", "--dry-run", "--repeat", "1", "--variants", "default")
    assert "\n36 cells\n" in mine.stdout and "x86-64" not in mine.stdout
    full = cli("run", "--dry-run", "--full")
    assert "\n144 cells\n" in full.stdout and "8 s budget" in full.stdout
    assert "will be flagged over_budget" in full.stdout


def test_variant_that_overrides_the_thread_count_is_refused(tmp_path: Path) -> None:
    vfile = tmp_path / "v.toml"
    vfile.write_text("[[variant]]\nname = 'omp4'\nframework = 'null'\n"
                     "env = { OMP_NUM_THREADS = '4' }\n")
    r = cli("run", "--repeat", "1", "--frameworks", "null", "--variants", "omp4",
            "--variants-file", str(vfile),
            "--threads", "2", "--results-dir", str(tmp_path / "res"), "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("cnnbench: error: variant 'omp4' sets OMP_NUM_THREADS=4, which "
                                "conflicts with 2 threads (--threads); remove it from the "
                                "variant or pass --threads 4")
    assert not (tmp_path / "res").exists()  # refused before anything ran
    ok = cli("run", "--repeat", "1", "--frameworks", "null", "--variants", "omp4",
            "--variants-file", str(vfile),
             "--threads", "4", "--dry-run")
    assert ok.returncode == 0, ok.stderr


def test_malformed_variants_file(tmp_path: Path) -> None:
    bad = tmp_path / "v.toml"
    bad.write_text("[[variant]]\nname = 'x'\nframework = 'pytorch'\nenv = 3\n")
    r = cli("run", "--variants-file", str(bad), "--dry-run")
    assert r.returncode == 2 and "env must be a table" in r.stderr
    bad.write_text("not toml = = =")
    r = cli("run", "--variants-file", str(bad), "--dry-run")
    assert r.returncode == 2 and "not valid TOML" in r.stderr


def test_variants_file_options(tmp_path: Path) -> None:
    good = tmp_path / "v.toml"
    good.write_text("[[variant]]\nname = 'cl'\nframework = 'pytorch'\n"
                    "options = { memory_format = 'channels_last' }\n")
    r = cli("run", "--variants-file", str(good), "--variants", "cl", "--frameworks", "pytorch",
            "--workloads", "lenet5", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "pytorch/cl lenet5" in r.stdout
    good.write_text("[[variant]]\nname = 'cl'\nframework = 'pytorch'\noptions = [1]\n")
    r = cli("run", "--variants-file", str(good), "--dry-run")
    assert r.returncode == 2 and "options must be a table" in r.stderr


def test_list_piped_keeps_every_count_whole() -> None:
    r = cli("list")  # stdout is a pipe here: rich must not cut the numbers at 80 columns
    assert r.returncode == 0
    for count in ("61,706", "1,068,298", "269,722", "25,557,032", "138,357,544", "3,504,872"):
        assert count in r.stdout


def test_list_variants(tmp_path: Path) -> None:
    r = cli("list", "--variants", "--json")
    assert r.returncode == 0
    found = {(v["name"], v["framework"]): v for v in json.loads(r.stdout)}
    assert found[("channels-last", "pytorch")]["options"] == {"memory_format": "channels_last"}
    assert found[("onednn-on", "tensorflow")]["env"] == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    custom = tmp_path / "v.toml"
    custom.write_text("[[variant]]\nname = 'mine'\nframework = 'jax'\npython = '/opt/x/python'\n")
    r = cli("list", "--variants", "--variants-file", str(custom))
    assert r.returncode == 0 and "mine" in r.stdout and "/opt/x/python" in r.stdout
    r = cli("list", "--variants", "--variants-file", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_list_json_counts() -> None:
    r = cli("list", "--json")
    assert r.returncode == 0
    data = {w["name"]: w for w in json.loads(r.stdout)}
    assert list(data) == list_workloads()
    for name, w in data.items():
        spec = get_workload(name)
        assert w["params"] == spec.published_params
        assert w["flops_per_image"] == 2 * spec.macs_per_image


def test_dry_run_prints_the_plan() -> None:
    r = cli("run", "--repeat", "1", "--frameworks", "null", "--workloads", "resnet*", "--batch-sizes", "2,4",
            "--dry-run")
    assert r.returncode == 0
    assert "8 cells" in r.stdout


def test_run_then_report_end_to_end(tmp_path: Path) -> None:
    res = tmp_path / "results"
    html = tmp_path / "out" / "index.html"
    r = cli("run", "--quick", "--repeat", "1", "--frameworks", "null", "--budget", "0.3", "--results-dir",
            str(res), "--run-id", "e2e", "--machine-id", "testbox", "--adapter-opt",
            "step_s=0.0005", "--no-progress", "--report", str(html))
    assert r.returncode == 0, r.stderr
    run_file = res / "testbox" / "e2e.jsonl"
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    assert [r["mode"] for r in rows].count("peak") == 1  # the GEMM probe comes first
    assert len(rows) == 7 and {row["status"] for row in rows} == {"ok"}
    assert (res / "testbox" / "machine.json").exists()
    text = html.read_text()
    for w in ("lenet5", "cifar10_tutorial", "resnet20"):
        assert w in text
    # resume of a finished run does nothing and duplicates nothing
    r = cli("run", "--quick", "--repeat", "1", "--frameworks", "null", "--budget", "0.3", "--results-dir",
            str(res), "--resume", "e2e", "--machine-id", "testbox", "--adapter-opt",
            "step_s=0.0005", "--no-progress")
    assert r.returncode == 0 and "0 cells to run (6 already recorded)" in r.stdout
    assert len(run_file.read_text().splitlines()) == 7


def test_device_sets_weak_and_strong_rows(tmp_path: Path) -> None:
    """cpu*2 with weak and strong scaling through the CLI (null adapter: the harness's own
    data-parallel path), and gpu:0+1 on a machine without GPUs: unavailable, with the reason."""
    import importlib.util

    res = tmp_path / "results"
    r = cli("run", "--frameworks", "null", "--workloads", "lenet5", "--modes", "train",
            "--batch-sizes", "8", "--devices", "cpu,cpu*2,gpu:0+1", "--scaling", "weak,strong",
            "--budget", "0.3", "--results-dir", str(res), "--run-id", "dp", "--machine-id",
            "box", "--no-progress", "--no-probe")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (res / "box" / "dp.jsonl").read_text().splitlines()]
    got = {(row["device"], row["scaling"]): row for row in rows}
    assert set(got) == {("cpu", None), ("cpu*2", "weak"), ("cpu*2", "strong"),
                        ("gpu:0+1", "weak"), ("gpu:0+1", "strong")}
    one, weak, strong = got["cpu", None], got["cpu*2", "weak"], got["cpu*2", "strong"]
    assert (one["n_devices"], one["batch_size"], one["per_device_batch"]) == (1, 8, 8)
    assert (weak["n_devices"], weak["batch_size"], weak["per_device_batch"]) == (2, 16, 8)
    assert (strong["batch_size"], strong["per_device_batch"]) == (8, 4)
    assert weak["simulated"] and not one["simulated"] and weak["status"] == "ok"
    gpu = got["gpu:0+1", "weak"]
    has_nvml = importlib.util.find_spec("pynvml") is not None
    if not has_nvml or json.loads((res / "box" / "machine.json").read_text())["gpus"] == []:
        assert gpu["status"] == "unavailable" and "needs 2 GPUs" in gpu["error"], gpu["error"]
        assert not gpu["simulated"] and gpu["n_devices"] == 2


def test_env_reports_machine_without_importing_frameworks() -> None:
    r = cli("env", "--frameworks", "null", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["machine"]["cpu"]["logical_cores"] >= 1
    assert data["frameworks"]["null"]["status"] == "ok"


def test_each_command_runs_in_process_from_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    """A command is its options dataclass and run(options): no parser, no subprocess."""
    from cnnbench.commands import list as list_cmd
    from cnnbench.commands import run as run_cmd

    opts = run_cmd.RunOptions(frameworks=["null"], workloads=["resnet*"], batch_sizes=[2, 4],
                              repeat=1, dry_run=True)
    assert run_cmd.run(opts) == 0
    assert "\n8 cells\n" in capsys.readouterr().out
    assert list_cmd.run(list_cmd.ListOptions(json=True, tag="small")) == 0
    listed = [w["name"] for w in json.loads(capsys.readouterr().out)]
    assert listed == list_workloads(tag="small") and listed


def test_parsed_flags_are_the_options_dataclass() -> None:
    """The parser is generated from RunOptions: what it reads back is that dataclass, with
    the field's default where a flag was left out."""
    from cnnbench.cli import build_parser
    from cnnbench.commands import run as run_cmd
    from cnnbench.core.options import parsed_command
    from cnnbench.sweep.options import RunOptions, SlurmOptions

    run, opts = parsed_command(build_parser().parse_args(
        ["run", "--no-interleave", "--adapter-opt", "step_s=0.5", "--launcher", "slurm",
         "--shared-nodes", "--slurm-arg=--account=a"]))
    assert opts == RunOptions(interleave="none", adapter_opt={"step_s": 0.5}, launcher="slurm",
                              slurm=SlurmOptions(exclusive=False, extra=["--account=a"]))
    assert run is run_cmd.run
    _, plain = parsed_command(build_parser().parse_args(["run"]))
    assert plain == RunOptions()


def test_top_level_help_does_not_import_the_estimator() -> None:
    code = ("import sys\nfrom cnnbench.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('ESTIMATE', 'cnnbench.plan.estimate' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: cnnbench" in r.stdout and "ESTIMATE False" in r.stdout
    # `run --help` computes the presets' help text when it is shown.
    assert "the full sweep: every registered workload" in cli("run", "--help").stdout


def test_a_workload_can_pin_its_mode() -> None:
    r = cli("run", "--dry-run", "--frameworks", "pytorch", "--workloads",
            "resnet50:infer,resnet20:train,lenet5", "--modes", "infer", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    cells = {tuple(line.split()[1:3]) for line in r.stdout.splitlines()
             if line.startswith("pytorch/")}
    assert cells == {("resnet50", "infer"), ("resnet20", "train"), ("lenet5", "infer")}
    bad = cli("run", "--dry-run", "--workloads", "resnet50:fly")
    assert bad.returncode == 2 and "unknown mode 'fly'" in bad.stderr
    t = cli("tune", "--dry-run", "--frameworks", "mxnet", "--workloads",
            "resnet50:infer,resnet20:train")
    assert t.returncode == 0, t.stderr
    assert [ln for ln in t.stdout.splitlines() if " candidate" in ln] == [
        "mxnet resnet50 infer cpu: 2 candidates", "mxnet resnet20 train cpu: 1 candidate"]
