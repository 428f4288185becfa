# Airflow 3, its own image and its own dependencies (airflow_bridge/requirements.txt, pinned by
# docker/airflow-constraints.txt): it shares no package with the platform's images. Its DAGs only
# launch Dagster jobs over the webserver's GraphQL API and wait for them (~0.45 GB: 0.3 GB of packages).
# One image for the API server, the scheduler (LocalExecutor: tasks run in it) and the DAG
# processor; docker-compose.yml gives each its command and health check.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 airflow \
    && useradd --system --uid 10001 --gid airflow --home-dir /home/airflow --create-home airflow

FROM base AS build
RUN python -m venv /opt/venv
COPY docker/airflow-constraints.txt /tmp/constraints.txt
COPY airflow_bridge/requirements.txt /tmp/requirements.txt
RUN pip install --constraint /tmp/constraints.txt --requirement /tmp/requirements.txt

FROM base AS airflow
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY airflow_bridge ./airflow_bridge
COPY docker/healthcheck.py ./docker/
RUN mkdir -p /opt/airflow/logs && chown -R airflow:airflow /opt/airflow
ENV AIRFLOW_HOME=/opt/airflow \
    PYTHONPATH=/app \
    AIRFLOW__CORE__DAGS_FOLDER=/app/airflow_bridge/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
USER 10001:10001
EXPOSE 8080
CMD ["airflow", "api-server", "--port", "8080"]
