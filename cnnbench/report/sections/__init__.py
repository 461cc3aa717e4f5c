"""The report's sections: one module each, registered by ``registry.section`` with its id,
heading and order, and found by ``registry.load_all`` (adding a section is adding a module).

Sections only choose, format and draw: every ratio, interval, grouping and ranking they show
comes from ``cnnbench.analyse`` (``pairs``, ``systems``, ``value``, ``inventory``,
``builds``, ``scaling``, ``claims``, on ``compare.compare_cells``). Each section is bounded:
past a few hundred cells it summarises (best per group, a distribution) and keeps its full
table as a compressed download, so 100,000 cells make a report of a few MB.
"""
