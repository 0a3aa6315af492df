"""The options of the drug-response heads (GIN drug encoder + MLP) and their defaults.

Apart from benchmarks.models._drug_response, so that registering a model that takes them
does not import torch-geometric.
"""

DRUG_RESPONSE_OPTIONS = {"epochs": 200, "lr": 1e-3, "batch_size": 64, "patience": 20, "hidden": 128}
