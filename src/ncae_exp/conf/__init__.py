"""Hydra configs of ncae-run, shipped inside the package so an installed ncae-run finds them."""
