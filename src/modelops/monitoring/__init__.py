"""After the deploy: drift and quality of the served model per window, the retraining decision,
its issues and its pull request, and the drift gate on the server's request log."""
