"""Parsers fuzzed with hypothesis: they raise only their own one-line error types."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import UnknownAdapter
from cnnbench.cli import UsageError, build_parser
from cnnbench.core.cells import PlanError, normalize_device
from cnnbench.core.prices import PriceError, parse_prices
from cnnbench.core.schema import iter_rows
from cnnbench.plan.expand import expand
from cnnbench.plan.variants import VariantError, load_variants_file
from workloads import UnknownWorkload

OPTIONS = ["run", "report", "env", "list", "--quick", "--frameworks", "--workloads", "--modes",
           "--batch-sizes", "--precisions", "--exec-modes", "--devices", "--threads",
           "--budget", "--target-ci", "--timeout", "--python", "--adapter-opt", "--run-id",
           "--resume", "--machine-id", "--memory-limit-mb", "--json", "-o", "--prices",
           "--filter", "--tag", "--variants", "--variants-file", "--dry-run"]
WORDS = st.one_of(st.sampled_from(OPTIONS), st.text(max_size=12),
                  st.sampled_from(["0", "-1", "1.5", "nan", "inf", "a=b", "=", ",", "cpu",
                                   "gpu:0", "null", "pytorch", "lenet5", "../x"]))

TOML_PIECES = st.sampled_from([
    "[[variant]]\n", "[[machine]]\n", "name = 'x'\n", "framework = 'pytorch'\n",
    "framework = '*'\n", "framework = 3\n", "env = {A = '1'}\n", "env = 'no'\n",
    "python = ''\n", "match = 'm*'\n", "price_usd = 100\n", "price_usd = -1\n",
    "hourly_usd = 0\n", "hourly_usd = 1e400\n", "label = 5\n", "bogus = 1\n", "[x]\n",
    "= =\n", "name = 'a/b'\n", "price_usd = true\n", "'\n", "[[variant.env]]\n",
])
TOML_TEXT = st.one_of(st.lists(TOML_PIECES, max_size=8).map("".join), st.text(max_size=200))


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=8))
def test_cli_parser_raises_only_usage_errors(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    except SystemExit as exc:  # --help / --version style exits are fine
        assert exc.code == 0


@settings(max_examples=300, deadline=None)
@given(TOML_TEXT)
def test_prices_parser(text: str) -> None:
    try:
        prices = parse_prices(text)
    except PriceError as exc:
        assert str(exc)
    else:
        for p in prices:
            assert p.price_usd is None or p.price_usd > 0
            assert p.hourly_usd is None or p.hourly_usd > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOML_TEXT)
def test_variants_parser(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.toml"
        p.write_text(text, encoding="utf-8")
        try:
            variants = load_variants_file(p)
        except VariantError as exc:
            assert str(exc)
        else:
            assert all(v.name and isinstance(v.env, dict) for v in variants)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_results_reader_never_raises(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.jsonl"
        p.write_bytes(data)
        problems: list[str] = []
        rows = list(iter_rows(p, problems))
        assert all(isinstance(r, dict) for r in rows)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3),
       st.sampled_from(["fp32", "bf16", "int4", ""]), st.sampled_from(["train", "x"]))
def test_plan_raises_only_plan_errors(device: str, batches: list[int], prec: str,
                                      mode: str) -> None:
    try:
        normalize_device(device)
        expand(["null"], ["lenet5"], modes=[mode], batch_sizes=batches or None,
               precisions=[prec], devices=[device])
    except (PlanError, UnknownAdapter, UnknownWorkload) as exc:
        assert str(exc)


DEVICE_TEXT = st.one_of(
    st.sampled_from(["cpu", "gpu", "cuda", "gpu:all", "GPU:ALL", " cpu "]),
    st.integers(1, 64).map(lambda n: f"cpu*{n}"),
    st.lists(st.integers(0, 15), min_size=1, max_size=5).flatmap(
        lambda idx: st.sampled_from(["gpu:", "cuda:"]).flatmap(
            lambda pre: st.sampled_from(["+", ","]).map(
                lambda sep: pre + sep.join(map(str, idx))))),
    st.text(max_size=10))


@settings(max_examples=500, deadline=None)
@given(DEVICE_TEXT)
def test_device_set_round_trips_through_its_string(text: str) -> None:
    """A device set parsed once reads back the same from str(); the helpers the plan, the
    estimator and the rows use agree with it."""
    from cnnbench.core.cells import DeviceSet, base_device, device_count, is_simulated

    try:
        ds = DeviceSet.parse(text)
    except PlanError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    again = DeviceSet.parse(str(ds))
    assert again == ds and str(again) == str(ds) == normalize_device(text)
    assert device_count(str(ds)) == ds.count and is_simulated(str(ds)) == ds.is_simulated
    assert ds.count == (0 if str(ds) == "gpu:all" else len(ds.indices or ()))
    assert ds.base.count == 1 and not ds.base.parallel and ds.base.kind == ds.kind
    assert base_device(str(ds)) == str(ds.base)
    assert ds.is_simulated == (ds.kind == "cpu" and ds.count > 1)
    if ds.kind == "gpu" and ds.indices:
        assert list(ds.indices) == sorted(set(ds.indices))
        assert ds.gpus_needed == max(ds.indices) + 1
    resolved = ds.resolve(4)
    assert resolved == ds or (str(ds) == "gpu:all" and str(resolved) == "gpu:0+1+2+3")
