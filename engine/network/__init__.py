"""Container networking: bridges, veths, IPAM, firewall rules, embedded DNS, published ports.

One module per concern (see each module's docstring). `model` holds the two
records every other module shares: a `Network` and a container's `Endpoint`.
"""
