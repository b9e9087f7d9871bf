"""The one figure layer: plain functions, data in, ``plotly.graph_objects.Figure`` out.

Streamlit pages and Jupyter widgets call the same functions, so a chart looks the same everywhere.
"""
from . import theme

__all__ = ["theme"]
