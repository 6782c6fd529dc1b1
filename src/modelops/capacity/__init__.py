"""Capacity: what one replica sustains at the latency objective, measured by a real load test,
and the replicas and per-replica scaling target that follow from it. `policy` holds the pure
decisions (a step's verdict, the knee, the next rate, the proposal), `load` the side effects
(the server, locust, CPU and memory), `run` the order of things, `report` the JSON and its
reader (`read_capacity`, for what renders autoscaling from the proposal).
"""
