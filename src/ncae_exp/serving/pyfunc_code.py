"""The file MLflow runs to load a logged model ("models from code"; models/mlflow_model.py
names it): the pyfunc wrapper, whose ``load_context`` reads the model's artifacts."""

from mlflow.models import set_model

from ncae_exp.serving.pyfunc import RecommenderModel

set_model(RecommenderModel())
