"""The cluster lock's owner record and the audit line (pure parts of cluster/guard.py)."""

from __future__ import annotations

import json
import os
import socket

from survey_ctl.cluster.guard import Owner, audit_line


def test_owner_round_trip_and_description() -> None:
    me = Owner.me("surveyctl deploy")
    assert Owner.parse(json.dumps(me.__dict__)) == me
    held = Owner("ana@laptop", "laptop", 42, "surveyctl up", 0.0)
    assert held.describe() == "`surveyctl up` by ana@laptop (pid 42) since 1970-01-01 00:00:00 UTC"
    assert Owner.parse("") is None and Owner.parse('{"pid": 1}') is None


def test_only_a_dead_holder_on_this_machine_is_gone() -> None:
    here = socket.gethostname()
    assert not Owner("x", here, os.getpid(), "up", 0).gone()
    dead = 2 ** 22 + 1  # above the default pid_max: no such process
    assert Owner("x", here, dead, "up", 0).gone()
    assert not Owner("x", "another-machine", dead, "up", 0).gone()


def test_audit_line_is_one_json_record() -> None:
    line = audit_line("surveyctl deploy", "start pesquisa-app-1-next", "ok", at=0)
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert record["time"] == "1970-01-01T00:00:00Z"
    assert (record["command"], record["step"], record["result"]) == (
        "surveyctl deploy", "start pesquisa-app-1-next", "ok")
    assert "@" in record["operator"]
