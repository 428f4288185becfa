"""Airflow as the thin top-level trigger: DAGs that launch Dagster jobs over the webserver's
GraphQL API and wait for them. Runs in Airflow's own virtualenv (`make airflow`); imports nothing
of the project. All data logic stays in Dagster."""
