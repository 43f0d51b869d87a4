"""ncae-exp: the Neural Collaborative Autoencoder (NCAE) as a config-driven experiment CLI.

Pipeline, one package each: ``data`` (datasets, download, cache, splits) → ``models``
(the shared model interface and NCAE) → ``training`` (the epoch loop) → ``evaluation``
(metrics that never know which model they score) → ``tracking`` (MLflow).
"""

__version__ = "0.1.0"
