"""MLflow "model from code" for a fraudgate LightGBM model.

MLflow loads this file on its own (no fraudgate import needed), so MLServer's `mlserver-mlflow`
runtime and `mlflow.pyfunc.load_model` can serve the model in any environment with LightGBM.
It exists because the LightGBM flavour cannot take the named `fraud_features` tensor that the
signature (and every V2 client) uses: MLflow hands a named tensor over as a dict.
"""

import lightgbm
import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

INPUT_NAME = "fraud_features"


class FraudModel(PythonModel):
    def load_context(self, context):
        self.booster = lightgbm.Booster(model_file=context.artifacts["booster"])

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, dict):
            model_input = model_input[INPUT_NAME]
        features = np.asarray(model_input, dtype=np.float32).reshape(-1, 30)
        return self.booster.predict(features, num_threads=1)


mlflow.models.set_model(FraudModel())
