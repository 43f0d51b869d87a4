"""Using a trained model: rebuild it from a saved folder or an MLflow run, and recommend.

Sits on top of everything else: nothing in the training pipeline imports it.
"""
