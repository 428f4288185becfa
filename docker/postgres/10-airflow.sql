-- Airflow's metadata database, beside Dagster's (POSTGRES_DB): run once, on the volume's first start.
CREATE DATABASE airflow OWNER crypto;
