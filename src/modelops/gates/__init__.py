"""The pull-request gates. The only package that imports Deepchecks (in catalog, inputs, runner).

`registry` declares every gate once (name, params section, whether it judges a model, checks);
`results` holds the pure gate records and the verdict, which the report reads without paying
for Deepchecks' import.
"""
