"""The project's tooling: the ``mlloop`` command (``mlloop_cli.__main__``).

It drives Airflow from outside, as a user would: starts the embedded Airflow (``airflow_local``,
``airflow_supervisor``) or the scaled topology as processes (``scaled_local``), talks to it through
Airflow's official REST client (``rest``), and runs the loop through the scheduler (``demo``,
``replay``). It sits above ``dags/``: it may import the core (``mlloop``) and the Airflow layer's
constants (``mlloop_airflow``), never the reverse; nothing a task runs imports it.
"""
