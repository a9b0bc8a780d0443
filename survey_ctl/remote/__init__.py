"""The executor's transport: hosts over SSH (`ssh`), Docker through the same connection.

Import the submodules where they are needed: they import paramiko, which the CLI keeps
out of `surveyctl --help`.
"""
