"""Runs every ``features/*.feature`` file against the real engine (steps: conftest.py)."""

from pytest_bdd import scenarios

scenarios(".")
