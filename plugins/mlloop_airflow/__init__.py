"""mlloop_airflow: the Airflow layer of the ML loop.

Hooks own I/O (storage root, Feast, MLflow), operators are thin adapters from Airflow (templating,
XCom, Assets, logging) to the Airflow-free core in ``mlloop``. Nothing here imports pandas, Feast,
MLflow, Great Expectations or Evidently at module level: DAG files import these modules at parse
time, and the scheduler re-parses them constantly.
"""
