"""modelops: a GitOps CI/CD template for machine-learning models."""
