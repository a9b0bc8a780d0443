"""The local lab: the seed's four machines (lb, app1, app2, cloud) on one Linux box.

`lifecycle` has the commands (up, down, status, stop/start/cut/heal); `spec` says what
the lab is; `host_tools` prepares the machine it runs on; `images` makes the images
without a registry; `wheels` the app image's wheelhouse; `pki` the keys and
certificates; `machines` the containers that play the hosts; `topology_writer` the
files handed to the user; `ssh_check` logs in as surveyctl will; `progress` shows steps.
"""
