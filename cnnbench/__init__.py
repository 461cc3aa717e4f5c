"""cnnbench: the framework-free core (CLI, plan, runner, worker, timing, schema, report).

Nothing in this package imports a deep-learning framework; the worker imports one adapter,
inside that framework's own environment.
"""

__version__ = "0.1.0"
