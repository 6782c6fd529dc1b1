"""GitOps deploys: release state (pure), publishing, rendering (the only Jinja2 user) and
validation of the manifests Argo CD applies."""
