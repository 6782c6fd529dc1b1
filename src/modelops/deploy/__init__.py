"""GitOps deploys: the release commands end to end, rendering (the only Jinja2 user), and strict
validation of the manifests Argo CD applies."""
