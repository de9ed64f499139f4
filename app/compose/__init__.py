"""`dockyard compose`: compose files turned into Engine API calls.

The pipeline, one module per step: `loader` (YAML with line marks, `.env`, interpolation)
-> `schema` (the compose-spec JSON schema, errors with file:line) -> `model` (a normalized
project) -> `planner` (dependency order, config hash, create bodies) -> the verbs (`up`,
`down`, `logs`, `ps`, `lifecycle`), which talk to the engine only through
app.engine_client.
"""
