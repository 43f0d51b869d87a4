"""I-AutoRec (Sedhain, Menon, Sanner & Xie 2015, "AutoRec: Autoencoders Meet Collaborative
Filtering") — not a second implementation but NCAE's autoencoder configured as AutoRec:
item-based, a sigmoid hidden layer, a linear output, no input dropout, the squared error
summed over a vector's observed entries. The settings and what differs from the paper's
training are in ``conf/model/autorec.yaml``.
"""

from __future__ import annotations

from ncae_exp.models.ncae.model import NCAE


class AutoRec(NCAE):
    """NCAE with AutoRec's configuration; rating prediction only."""

    protocols = ("explicit",)
