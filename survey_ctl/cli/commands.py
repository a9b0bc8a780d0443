"""Registers every command group on the root app (one import per group)."""

from survey_ctl.cli import app

# Each group module adds its commands to `app` when imported, e.g.:
#   from survey_ctl.cli import config_cmd  # noqa: F401
_ = app
