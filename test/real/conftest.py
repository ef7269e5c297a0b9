"""Fixtures of the real tier: the Docker engine (the real servers come from the top conftest)."""

from support.containers import docker_client  # noqa: F401
