"""Deployment: static checks of deploy/ and the compose stack on podman."""
