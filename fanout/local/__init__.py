"""The local runtime: moto's server as AWS, plus what moto does not do (API Gateway, event source
mappings, schedules, DLQ redrive), all in one foreground process started by `make run`."""
