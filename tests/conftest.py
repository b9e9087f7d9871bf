"""Test-wide setup: idle OpenMP threads sleep (set before torch is imported anywhere)."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
