"""The edge exporter (`modelops-edge`, run by `modelops export`): converts the trained model into
a signed, parity-gated bundle. Lives in edge/.venv with the converters (protobuf 6)."""
