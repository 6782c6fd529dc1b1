"""The canary judge: promote, hold or roll back a canary step from its telemetry."""
