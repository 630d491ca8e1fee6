# The image every Airflow component, the Celery workers and the MLflow server of docker-compose.yaml
# run: the official Airflow 3 image plus this project, installed from uv.lock (no dev dependencies).
#
#   docker build -t mlloop-airflow --build-arg MLLOOP_GIT_COMMIT="$(git rev-parse HEAD)" .

# Stage 1: turn the lock file into a pinned, hashed requirements list.
FROM apache/airflow:3.3.2-python3.11 AS requirements
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /tmp/project
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt --output-file /tmp/requirements.txt

# Stage 2: the runtime image.
FROM apache/airflow:3.3.2-python3.11
ARG MLLOOP_GIT_COMMIT=unknown
# The project lives at /opt/mlloop with the same layout as the repository; Airflow, Feast and the
# specs are pointed at it. Everything deployment-specific (storage root, MLflow, Feast stores,
# executor, credentials) comes from the environment docker-compose.yaml sets.
ENV MLLOOP_PROJECT=/opt/mlloop \
    MLLOOP_HOME=/opt/airflow/mlloop \
    MLLOOP_FEAST_REPO=/opt/mlloop/feature_repo \
    MLLOOP_USE_CASES_DIR=/opt/mlloop/include/use_cases \
    MLLOOP_GIT_COMMIT=${MLLOOP_GIT_COMMIT} \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/mlloop/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/mlloop/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GIT_PYTHON_REFRESH=quiet

COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --requirement /tmp/requirements.txt

COPY --chown=airflow:0 . /opt/mlloop
# The project's own packages (mlloop, mlloop_airflow, and mlloop_cli with the `mlloop` command)
# without touching the locked dependencies; installed in site-packages, they find the project
# through MLLOOP_PROJECT (checked here: `mlloop parse` reads its dags/). Then, at build time:
# DuckDB's httpfs extension for Feast's offline store on S3 (from the locked
# duckdb-extension-httpfs package on amd64, downloaded by DuckDB elsewhere) and the local settings
# that let Celery workers preload heavy libraries for their task processes (MLLOOP_PRELOAD_MODULES).
RUN pip install --no-cache-dir --no-deps /opt/mlloop \
    && python -c "from mlloop.settings import PROJECT_ROOT as p; assert (p / 'dags').is_dir(), p" \
    && python -c "import duckdb; from mlloop.feast_offline_store import ensure_httpfs; print(ensure_httpfs(duckdb.connect()))" \
    && mkdir -p /opt/airflow/config /opt/airflow/auth \
    && python -c "from mlloop_airflow.preload import LOCAL_SETTINGS; print(LOCAL_SETTINGS, end='')" \
        > /opt/airflow/config/airflow_local_settings.py

WORKDIR /opt/airflow
