"""After the deploy: what normal looks like (the reference profile), SLOs and alerts, dashboards,
the canary judge and drift monitoring. Pure parts; Prometheus and GitHub each behind one module."""
