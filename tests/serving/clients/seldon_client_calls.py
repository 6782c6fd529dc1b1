"""Call a running microservice with seldon-core's own client (run in the serving environment).

Usage: python seldon_client_calls.py '{"port": ..., "names": [...], "rows": [...], "truth": [...]}'
Prints, as JSON, what each call answered: a prediction (`SeldonClient.microservice`), feedback
without a truth (`SeldonClient.microservice_feedback`, whose signature has no truth), and
feedback with one (`SeldonClient.feedback` with `gateway="seldon"`, which posts to the same
`/api/v1.0/feedback` the Seldon executor forwards to the model).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from seldon_core.seldon_client import SeldonClient
from seldon_core.utils import json_to_seldon_message, seldon_message_to_json


def _answer(result: Any) -> dict[str, Any]:
    response = result.response
    if response is not None and not isinstance(response, dict):
        response = seldon_message_to_json(response)
    return {"success": result.success, "msg": result.msg, "response": response}


def main() -> None:
    given = json.loads(sys.argv[1])
    endpoint = f"127.0.0.1:{given['port']}"
    client = SeldonClient(
        gateway="seldon",
        transport="rest",
        payload_type="ndarray",
        microservice_endpoint=endpoint,
        gateway_endpoint=endpoint,
        client_return_type="proto",
    )
    predicted = client.microservice(
        method="predict", data=np.array(given["rows"], dtype=object), names=given["names"]
    )
    without_truth = client.microservice_feedback(
        prediction_request=predicted.request, prediction_response=predicted.response, reward=1.0
    )
    truth = json_to_seldon_message({"data": {"ndarray": given["truth"]}})
    with_truth = client.feedback(
        prediction_request=predicted.request,
        prediction_response=predicted.response,
        prediction_truth=truth,
        reward=1.0,
    )
    print(
        json.dumps(
            {
                "predict": _answer(predicted),
                "feedback_without_truth": _answer(without_truth),
                "feedback": _answer(with_truth),
            }
        )
    )


if __name__ == "__main__":
    main()
