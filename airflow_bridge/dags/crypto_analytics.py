"""One thin DAG per Dagster job. Airflow decides *when*; Dagster does everything else.

Which partition a run processes: the day its data interval starts. The daily DAGs use
CronDataIntervalTimetable, so the scheduled run that starts after day D ends has the interval
[D, D+1) and processes partition D. (CronTriggerTimetable, Airflow 3's default for
``schedule="@daily"``, would label that run D+1 and process the wrong day.) A manual trigger gets
the last complete interval before it is triggered: triggered during day D, it processes D-1.

The DAGs start at the first partition (PARTITIONS_START, else Binance's first day, as the Dagster
jobs): Airflow refuses a logical date before it, and a day Dagster has no partition for yet (today,
or later) fails the task before anything is launched, without a retry."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_bridge.operator import DagsterJobOperator
from airflow_bridge.partitions import first_partition

# start_date in default_args: Airflow then refuses a trigger whose logical date is before it.
DEFAULTS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=6),
    "start_date": first_partition(),
}

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
        start_date=DEFAULTS["start_date"],
        catchup=False,
        doc_md=__doc__,
        max_active_runs=1,
        default_args=DEFAULTS,
        tags=["crypto-analytics", "dagster"],
    ) as dag:
        DagsterJobOperator(task_id=job, job_name=job, partitioned=partitioned)
    globals()[dag_id] = dag
