"""Helpers shared by several test folders, imported as ``_support.<module>``.

``pyproject.toml`` puts ``tests/`` on ``sys.path`` (``pythonpath = ["tests"]``). Everything here is an
independent reference (files read straight from run folders, numpy recomputations) or test plumbing
(polling, job managers, AppTest readers), never a call into the code under test for an expected value.
"""
