"""``python -m kdviz ...``: the command line (see ``kdviz.cli``; the engine's commands in ``kdviz.engine.cli``)."""
import os

# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning makes small models
# train many times slower. Only effective when set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from kdviz.cli import main  # noqa: E402

raise SystemExit(main())
