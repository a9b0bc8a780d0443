"""Registers every command group on the root app (one import per group)."""

# Each group module adds its commands to `survey_ctl.cli.app` when imported. One line per
# group, e.g. `from survey_ctl.cli import lab_cmd as lab_cmd`: the `as` marks it as used
# (nothing to silence) and ruff's isort keeps one line per group.
from survey_ctl.cli import app_cmd as app_cmd
from survey_ctl.cli import cluster_cmd as cluster_cmd
from survey_ctl.cli import config_cmd as config_cmd
from survey_ctl.cli import db_cmd as db_cmd
from survey_ctl.cli import deploy_cmd as deploy_cmd
from survey_ctl.cli import lab_cmd as lab_cmd
from survey_ctl.cli import status_cmd as status_cmd
from survey_ctl.cli import vpn_cmd as vpn_cmd
