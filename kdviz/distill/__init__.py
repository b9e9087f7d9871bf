"""Distillation objectives: soft targets (Hinton et al. 2015), and feature/relational losses."""
from .fsp import fsp_loss, fsp_matrix
from .kd_loss import KDLossParts, kd_loss, soft_target_loss
from .soft_targets import check_temperature, entropy, log_soften, soften, temperature_table

__all__ = ["fsp_matrix", "fsp_loss", "KDLossParts", "kd_loss", "soft_target_loss", "check_temperature", "entropy", "log_soften", "soften", "temperature_table"]
