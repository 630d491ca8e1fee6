"""mlloop: the Airflow-free core of the ML loop.

Everything here is plain Python over pandas, Great Expectations, Feast, scikit-learn, MLflow
and Evidently. Nothing imports Airflow: the Airflow layer lives in ``plugins/mlloop_airflow``
and adapts these functions to tasks (templating, XCom, connections, logging).
"""
