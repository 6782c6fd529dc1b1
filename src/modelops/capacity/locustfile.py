"""The load generator of `modelops capacity`: one step of offered load, open loop.

Locust runs this file in a process of its own (`python -m locust -f <this file> --plan
PLAN`); `modelops` never imports it, because importing locust patches the standard library
with gevent. The plan (JSON, written by `capacity.load`) names the target, the request bodies,
the offered rate, the number of requests and where to write the samples.

Open loop: arrival k of the step is due at `t0 + k / rate`, whatever happened before it.
Arrivals are dealt round robin to the users (user i sends arrivals i, i + users, ...); a user
sleeps until its next arrival is due, or sends at once when it is late because its previous
request was slow. Each sample's latency is counted from when the request was due, not from
when it went out, so a stall is charged to every request it delayed: coordinated omission is
corrected (as wrk2 does), and enough users (`users` in the plan) keep most requests on time.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.exception import StopUser

_plan: dict[str, Any] = {}
_bodies: list[str] = []
_samples: list[tuple[float, float, float, int]] = []
"""(due, sent, answered, status) of each request, seconds after t0; status 0: no answer."""
_state = {"t0": 0.0, "finished": 0}
_indices = itertools.count()


def _options(parser: Any) -> None:
    parser.add_argument("--plan", default="", help="the step to run (JSON, from modelops)")


def _load(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    plan_file = Path(options.plan if options is not None else "")
    _plan.update(json.loads(plan_file.read_text(encoding="utf-8")))
    bodies = json.loads(Path(_plan["bodies"]).read_text(encoding="utf-8"))
    _bodies.extend(bodies)
    Sender.network_timeout = Sender.connection_timeout = float(_plan["timeout_seconds"])


def _start(environment: Environment, **_: Any) -> None:
    # Every user is spawned before the first arrival is due (spawn rate: all in one second).
    _state["t0"] = time.time() + float(_plan["lead_seconds"])


def _write(environment: Environment, **_: Any) -> None:
    """Write the samples (to a temporary name, then renamed: a reader never sees half), and
    exit 0: slow or failed requests are the measurement, not a failure of the generator."""
    out = Path(_plan["out"])
    staging = out.with_name(f".{out.name}.{os.getpid()}")
    document = {"t0": _state["t0"], "samples": _samples}
    staging.write_text(json.dumps(document), encoding="utf-8")
    staging.replace(out)
    environment.process_exit_code = 0


events.init_command_line_parser.add_listener(_options)
events.init.add_listener(_load)
events.test_start.add_listener(_start)
events.quitting.add_listener(_write)


class Sender(FastHttpUser):
    """Sends its share of the step's arrivals, each when it is due."""

    @task
    def send(self) -> None:
        rate, total, users = float(_plan["rate"]), int(_plan["requests"]), int(_plan["users"])
        headers = {"Content-Type": "application/json"}
        path = str(_plan["path"])
        while _state["t0"] == 0.0:  # test_start has not run yet
            gevent.sleep(0.01)
        t0 = _state["t0"]
        for arrival in range(next(_indices), total, users):
            due = t0 + arrival / rate
            wait = due - time.time()
            if wait > 0:
                gevent.sleep(wait)
            sent = time.time()
            body = _bodies[arrival % len(_bodies)]
            with self.client.post(path, data=body, headers=headers, catch_response=True) as answer:
                status = int(answer.status_code or 0)
                answer.success()  # locust's own statistics are not used
            _samples.append((due - t0, sent - t0, time.time() - t0, status))
        _state["finished"] += 1
        if _state["finished"] == users and self.environment.runner is not None:
            gevent.spawn(self.environment.runner.quit)
        raise StopUser
