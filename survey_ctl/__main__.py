"""Allow `python -m survey_ctl`."""

from survey_ctl.cli import main

main()
