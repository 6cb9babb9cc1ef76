"""Shared runtime of the stepboard services: config, logging, gRPC bootstrap, clients."""
