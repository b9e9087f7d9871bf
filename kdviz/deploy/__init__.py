"""Deployment: the forms a compressed model can be run in, and their measured CPU speed and memory."""
