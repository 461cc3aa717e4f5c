"""Shared pytest options. Imports nothing heavier than numpy: it also runs inside framework
environments for the conformance suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--framework", action="store", default=None,
                     help="adapter the conformance suite checks (pytorch, null, ...)")
    parser.addoption("--onednn", action="store", choices=("on", "off"), default=None,
                     help="force the framework's own oneDNN switch before it is imported "
                          "(TensorFlow: TF_ENABLE_ONEDNN_OPTS, MXNet: MXNET_MKLDNN_ENABLED); "
                          "default: the framework decides, TensorFlow from the CPU")
    parser.addoption("--isa-cap", action="store_true", default=False,
                     help="cap the framework to generic CPU kernels before it is imported "
                          "(PyTorch: ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=AVX2; "
                          "JAX: XLA_FLAGS=--xla_cpu_max_isa=AVX)")
    parser.addoption("--full-size", action="store_true", default=False,
                     help="also take the 224x224 VGG-16 training step (minutes per framework)")


def pytest_configure(config: pytest.Config) -> None:
    # Before collection, so before any test module can import a framework.
    from tests.conformance import paths

    try:
        paths.force(config.getoption("--framework"), config.getoption("--onednn"),
                    config.getoption("--isa-cap"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.conformance import paths

    framework = config.getoption("--framework")
    return [paths.describe(framework)] if framework else []
