"""NCAE, the paper's model: one module per equation block (see README, "The method")."""

from ncae_exp.models.ncae.feedback import ExplicitFeedback, ImplicitFeedback
from ncae_exp.models.ncae.model import NCAE
from ncae_exp.models.ncae.pretrain import PretrainSchedule

__all__ = ["NCAE", "ExplicitFeedback", "ImplicitFeedback", "PretrainSchedule"]
