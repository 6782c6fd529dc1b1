"""The pull-request gates. The only package that imports Deepchecks (in catalog, inputs, runner).

`results` holds the pure gate records and the verdict, which the report reads without paying
for Deepchecks' import.
"""
