"""scikit-learn-example-style: a params dict passed to an estimator."""

import os

from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=13)

params = {
    "n_estimators": 100,
    "max_depth": 3,
    "min_samples_split": 5,
    "learning_rate": 0.1,
    "subsample": 1.0,
    "random_state": 0,
}
params["random_state"] = int(os.environ.get("BENCH_SEED", params["random_state"]))
model = GradientBoostingRegressor(**params).fit(X_train, y_train)
mse = mean_squared_error(y_test, model.predict(X_test))
print(f"The mean squared error (MSE) on test set: {mse:.4f}")
print(f"val_mse: {mse:.4f}")
