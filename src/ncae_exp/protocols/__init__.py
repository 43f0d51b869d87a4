"""Evaluation protocols: how data is split, which metrics are reported and which one picks
the best epoch. ``explicit`` = rating prediction (RMSE); ``implicit`` comes next."""
