"""CFN (Strub, Gaudel & Mary 2016, "Hybrid Recommender System based on Autoencoders";
V-CFN = item-based) — NCAE's autoencoder configured as CFN: a denoising autoencoder with
masking noise on the observed entries and the α/β-weighted loss NCAE's Eq. 5 builds on,
summed rather than divided by |K(u)|. Side information (CFN's hybrid part) is not
supported. The settings are in ``conf/model/cfn.yaml``.
"""

from __future__ import annotations

from ncae_exp.models.ncae.model import NCAE


class CFN(NCAE):
    """NCAE with CFN's configuration; rating prediction only."""

    protocols = ("explicit",)
