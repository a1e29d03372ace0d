"""The load generator of ``mlopsctl rehearse``'s load test, run by the Python of locust's own
environment (``python _loadgen.py CONFIG.json RESULT.json``), never imported by mlopsctl:
importing locust monkey-patches the whole process for gevent.

It steps the number of users up (each user one request in flight, no wait between requests)
and measures each step over a window after a warm-up; it stops after the first step whose p95
latency exceeds the SLA or that saw a failed request (an HTTP error, a refused connection, or an
answer without predictions in it).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main(config_path: str, result_path: str) -> int:
    import gevent
    import locust
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    with open(config_path, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)
    body = json.dumps(config["request"]).encode("utf-8")
    answer_key = str(config["answer_key"])
    path = str(config["path"])
    sla_ms = float(config["sla_ms"])

    class Caller(FastHttpUser):  # type: ignore[misc]
        host = str(config["url"])
        wait_time = constant(0)
        network_timeout = float(config["timeout_s"])
        connection_timeout = float(config["timeout_s"])

        @task  # type: ignore[untyped-decorator]
        def predict(self) -> None:
            with self.client.post(
                path,
                data=body,
                headers={"Content-Type": "application/json"},
                catch_response=True,
            ) as answer:
                if answer.status_code != 200:
                    answer.failure(f"HTTP {answer.status_code}: {(answer.text or '')[:200]}")
                    return
                try:
                    parsed = answer.json()
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict) or answer_key not in parsed:
                    answer.failure(f"no {answer_key} in the answer: {(answer.text or '')[:200]}")

    env = Environment(user_classes=[Caller])
    runner = env.create_local_runner()
    steps: list[dict[str, Any]] = []
    try:
        for users in config["users"]:
            runner.start(users, spawn_rate=max(float(users), 1.0))
            gevent.sleep(float(config["warmup_s"]))
            env.stats.reset_all()
            started = time.monotonic()
            gevent.sleep(float(config["window_s"]))
            elapsed = time.monotonic() - started
            total = env.stats.total
            requests, failures = total.num_requests, total.num_failures
            p95 = float(total.get_response_time_percentile(0.95)) if requests else None
            p50 = float(total.get_response_time_percentile(0.5)) if requests else None
            errors = [f"{e.occurrences}x {e.error}" for e in env.stats.errors.values()][:3]
            steps.append(
                {
                    "users": users,
                    "seconds": round(elapsed, 3),
                    "requests": requests,
                    "failures": failures,
                    "rps": round((requests - failures) / elapsed, 3) if elapsed else 0.0,
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "errors": errors,
                }
            )
            if failures or p95 is None or p95 > sla_ms:
                break
    finally:
        runner.quit()
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump({"tool": f"locust {locust.__version__}", "steps": steps}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
