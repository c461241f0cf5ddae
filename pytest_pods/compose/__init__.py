"""Compose files (issue 16): the Compose Specification read into plain data (:mod:`.spec`); the
plugin's ``compose()`` fixture starts what it describes. Pure: imports nothing but our errors."""

from pytest_pods.compose.spec import (
    Build,
    ComposeFileError,
    Mount,
    NetworkSpec,
    Project,
    ServiceSpec,
    VolumeSpec,
    interpolate,
    load,
    parse_duration,
    read_env_file,
)

__all__ = ["Build", "ComposeFileError", "Mount", "NetworkSpec", "Project", "ServiceSpec", "VolumeSpec",
           "interpolate", "load", "parse_duration", "read_env_file"]
