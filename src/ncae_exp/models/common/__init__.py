"""Pieces shared by several models (factor scoring, negative sampling, ...)."""
