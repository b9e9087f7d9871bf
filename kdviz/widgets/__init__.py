"""Jupyter widgets (ipywidgets + plotly ``FigureWidget``) over the same figures and engine as the app.

* ``TemperatureExplorer(teacher, dataset)``: a temperature slider and sample picker, with the
  soft targets and their entropy (Hinton, Vinyals, Dean 2015, eq. 1).
* ``TrainingMonitor(job_or_jobs)``: live loss, accuracy and probe soft-target charts of background
  jobs, with Pause and Stop.
* ``RunComparison(runs)``: overlaid accuracy of several runs (live or from run folders).
* ``FSPMonitor``, ``PruningExplorer``/``PruningMonitor``, ``QuantizationExplorer``/``CentroidMonitor``,
  ``DeepCompressionMonitor``: the FSP, pruning and quantization labs' widgets.

Every chart is built by a ``kdviz.figures`` function and kept live by ``_live.LiveFigure``
(in-place, batched updates); see ``kdviz.widgets._live`` for the pattern new explorers follow.
"""
from .comparison import RunComparison
from .deep_compression import DeepCompressionMonitor
from .fsp import FSPMonitor
from .monitor import TrainingMonitor
from .pruning import PruningExplorer, PruningMonitor
from .quantization import CentroidMonitor, QuantizationExplorer
from .temperature import TemperatureExplorer

__all__ = [
    "TemperatureExplorer", "TrainingMonitor", "RunComparison", "FSPMonitor", "PruningExplorer", "PruningMonitor",
    "QuantizationExplorer", "CentroidMonitor", "DeepCompressionMonitor",
]
