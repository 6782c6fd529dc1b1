"""The pull-request report: `inputs.gather` collects, `markdown.render` formats."""
