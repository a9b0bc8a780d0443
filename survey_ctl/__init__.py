"""surveyctl: run the market-survey web app as a load-balanced cluster over SSH."""

__version__ = "0.1.0"
