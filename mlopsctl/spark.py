"""Spark on Kubernetes sized from the data volume scored per run.

Batch scoring reads its input in partitions of ``PARTITION_MIB`` and applies the model to each
partition in a Python worker: no shuffle, no data held in memory beyond a partition per task, so
the job scales with executors. Each executor scores about ``GB_PER_EXECUTOR`` per run (four
cores, a partition per core at a time); the executors' Python workers, where the model runs,
live in the memory overhead, which is therefore as large as half the JVM heap, and at least one
copy of the model plus its runtime per core (each Python worker loads the model). The driver plans
one task per partition: past ``LARGE_RUN_GB`` it gets more cores and memory for the task list.
"""

from __future__ import annotations

import math
from typing import Any

PARTITION_MIB = 128
GB_PER_EXECUTOR = 50
EXECUTOR_CORES = 4
EXECUTOR_MEMORY = "8g"
EXECUTOR_MEMORY_OVERHEAD_GB = 4
# What a Python worker holds besides the model (interpreter, pandas batch, Arrow buffers), in GB.
WORKER_RUNTIME_GB = 0.5
MIN_EXECUTORS = 2
MAX_EXECUTORS = 100
LARGE_RUN_GB = 1000
# When no volume was given, Spark was chosen for the volume that chooses it (BAT001: 100 GB).
ASSUMED_GB = 100.0


def executor_memory_overhead_gb(model_size_gb: float) -> int:
    """The executors' memory overhead: half the heap, and at least a model copy plus its runtime
    in each core's Python worker."""
    workers = math.ceil(EXECUTOR_CORES * (model_size_gb + WORKER_RUNTIME_GB))
    return max(EXECUTOR_MEMORY_OVERHEAD_GB, workers)


def spark_sizing(data_volume_gb: float | None, model_size_gb: float = 0.1) -> dict[str, Any]:
    """Driver and executors of the SparkApplication for ``data_volume_gb`` per run and a model
    of ``model_size_gb``."""
    volume = float(data_volume_gb) if data_volume_gb else ASSUMED_GB
    instances = min(MAX_EXECUTORS, max(MIN_EXECUTORS, math.ceil(volume / GB_PER_EXECUTOR)))
    large = volume >= LARGE_RUN_GB
    tasks = math.ceil(volume * 1024 / PARTITION_MIB)
    return {
        "data_volume_gb": volume,
        "assumed_volume": not data_volume_gb,
        "tasks": tasks,
        "partition_bytes": f"{PARTITION_MIB}m",
        "executor_instances": instances,
        "executor_cores": EXECUTOR_CORES,
        "executor_memory": EXECUTOR_MEMORY,
        "executor_memory_overhead": f"{executor_memory_overhead_gb(model_size_gb)}g",
        "driver_cores": 2 if large else 1,
        "driver_memory": "4g" if large else "2g",
        "driver_memory_overhead": "1g",
        "waves": math.ceil(tasks / (instances * EXECUTOR_CORES)),
    }
