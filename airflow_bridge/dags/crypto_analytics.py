"""One thin DAG per Dagster job. Airflow decides *when*; Dagster does everything else.

The daily DAGs use CronDataIntervalTimetable: the run that starts after day D ends has the data
interval [D, D+1) and processes partition D. (CronTriggerTimetable, Airflow 3's default for
``schedule="@daily"``, would label that run D+1 and process the wrong day.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_bridge.operator import DagsterJobOperator

DEFAULTS = {"retries": 2, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(hours=6)}

# (DAG id, Dagster job, cron of the data interval, partitioned)
DAGSTER_JOBS = [
    ("crypto_market_data", "market_data_job", "15 0 * * *", True),
    ("crypto_ml_predictions", "ml_prediction_job", "45 0 * * *", True),
    ("crypto_ml_training", "ml_training_job", "0 3 * * 1", False),
]

for dag_id, job, cron, partitioned in DAGSTER_JOBS:
    with DAG(
        dag_id=dag_id,
        description=f"Launch Dagster's {job} and wait for it",
        schedule=CronDataIntervalTimetable(cron, timezone="UTC"),
        start_date=datetime(2026, 11, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULTS,
        tags=["crypto-analytics", "dagster"],
    ) as dag:
        DagsterJobOperator(task_id=job, job_name=job, partitioned=partitioned)
    globals()[dag_id] = dag
