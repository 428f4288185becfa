"""Resources of the platform: settings, Spark, the lake, the warehouse and the exchange.

``resources.environment.build_resources`` is the one place that chooses them per environment.
This package's ``__init__`` stays empty so light users (the CLI's ``sql`` command, the services)
can import ``resources.settings`` without loading Dagster or Spark.
"""
