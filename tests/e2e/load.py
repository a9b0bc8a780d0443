"""A bounded load of simulated respondents through Nginx, counting every request and answer.

Each respondent (a thread with its own cookie jar and, when given, its own source
address, so the app's per-IP rate limits see distinct people) signs up, logs in, then
answers the questionnaire again and again (the app keeps one response per account,
upserted) with a think time, until the time is up; a lost session means logging in
again. Every request is counted (a redirect chain counts once): failed = a 5xx or no
answer at all; `unavailable` = the app's own 503 page (the VPN scenario). An answer is
acknowledged when its POST lands on /survey/thanks; `stored()` then checks MariaDB:
every respondent with an acknowledged answer has a row holding that answer (or a later
one it sent). Traffic goes only to the lab's lb address.
"""

from __future__ import annotations

import functools
import html
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from http.cookiejar import CookieJar

from tests.app.survey_helpers import VALID
from tests.e2e.test_cluster import _CSRF, BASE, PASSWORD

THINK_SECONDS = 0.3
TIMEOUT = 30.0


@dataclass
class Request:
    """One request: when (seconds since the start), what, and how it ended."""

    at: float
    path: str
    status: int  # 0: no answer (connection error or timeout)
    error: str = ""
    request_id: str = ""  # Nginx's X-Request-ID of an error answer, to find it in the logs

    @property
    def failed(self) -> bool:
        """A 5xx (other than the app's 503 page) or no answer."""
        return self.status == 0 or (self.status >= 500 and self.status != 503)


@dataclass
class Respondent:
    """One simulated person: an account, a cookie jar, the answers it got acknowledged."""

    email: str
    source: str | None
    log: list[Request]
    started: float
    acked: Decimal | None = None  # monthly_spend of the last acknowledged answer
    pending: list[Decimal] = field(default_factory=list)  # sent since, not acknowledged
    acks: int = 0

    def __post_init__(self) -> None:
        handler = _source_handler(self.source)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), *([handler] if handler else []))

    def open(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """GET (or POST `data`) `path`; (status, final URL, body), logged."""
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(BASE + path, data=body,
                                         method="POST" if body is not None else "GET")
        at = time.monotonic() - self.started
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                result = response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as exc:
            result = exc.code, exc.url, exc.read().decode("utf-8", "replace")
            self.log.append(Request(at, path, exc.code,
                                    request_id=exc.headers.get("X-Request-ID", "")))
            return result
        except (OSError, http.client.HTTPException) as exc:
            self.log.append(Request(at, path, 0, f"{type(exc).__name__}: {exc}"[:200]))
            return 0, "", ""
        self.log.append(Request(at, path, result[0]))
        return result

    def post_form(self, path: str, data: dict) -> tuple[int, str, str]:
        """GET `path`, then POST `data` with its csrf_token."""
        status, url, page = self.open(path)
        match = _CSRF.search(page)
        if match is None:
            return status, url, page
        return self.open(path, {**data, "csrf_token": html.unescape(match.group(1))})

    def log_in(self) -> bool:
        """Log in (the account exists); True when it worked."""
        status, url, _ = self.post_form("/login", {"email": self.email, "password": PASSWORD})
        return status == 200 and "/login" not in url

    def answer(self, spend: Decimal) -> str:
        """Answer once: "acked", "login" (session lost), or "no"."""
        self.pending.append(spend)  # sent, outcome unknown until acknowledged
        status, url, _ = self.post_form("/survey", {**VALID, "monthly_spend":
                                                    f"{spend:.2f}".replace(".", ",")})
        if status == 200 and url.endswith("/survey/thanks"):
            self.acked, self.pending = spend, []
            self.acks += 1
            return "acked"
        return "login" if "/login" in url else "no"

    def run(self, deadline: float, stop: threading.Event) -> None:
        """Sign up, log in, then answer until `deadline`."""
        self.post_form("/signup", {"email": self.email,
                                                    "new_password": PASSWORD,
                                                    "confirm": PASSWORD})
        self.__post_init__()  # a fresh cookie jar: log in as a returning respondent
        logged_in = self.log_in()
        n = 0
        while time.monotonic() < deadline and not stop.is_set():
            if not logged_in:
                logged_in = self.log_in()
            else:
                n += 1
                outcome = self.answer(Decimal(n * 100 + random.randint(1, 99)) / 100)
                logged_in = outcome != "login"
            time.sleep(THINK_SECONDS)


def _source_handler(source: str | None) -> urllib.request.HTTPHandler | None:
    if source is None:
        return None

    class SourceHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(functools.partial(http.client.HTTPConnection,
                                                  source_address=(source, 0)), req)

    return SourceHandler()


@dataclass
class Load:
    """A finished run: every respondent and request."""

    name: str
    respondents: list[Respondent]
    seconds: float

    @property
    def requests(self) -> list[Request]:
        """Every request, in time order."""
        return sorted((r for p in self.respondents for r in p.log), key=lambda r: r.at)

    def failed(self, start: float = 0.0, end: float = float("inf")) -> list[Request]:
        """Failed requests sent in [start, end) seconds."""
        return [r for r in self.requests if r.failed and start <= r.at < end]

    def count(self, start: float = 0.0, end: float = float("inf")) -> int:
        """Requests sent in [start, end) seconds."""
        return sum(1 for r in self.requests if start <= r.at < end)

    @property
    def acknowledged(self) -> int:
        """Respondents with an acknowledged answer."""
        return sum(1 for p in self.respondents if p.acked is not None)

    @property
    def statuses(self) -> dict[int, int]:
        """How many requests ended with each status (0: no answer)."""
        found: dict[int, int] = {}
        for request in self.requests:
            found[request.status] = found.get(request.status, 0) + 1
        return dict(sorted(found.items()))

    def stored(self, cursor) -> int:
        """Respondents whose acknowledged answer (or a later one they sent) is in MariaDB."""
        ok = 0
        for person in self.respondents:
            if person.acked is None:
                continue
            cursor.execute("SELECT r.monthly_spend FROM responses r JOIN users u "
                           "ON u.id = r.user_id WHERE u.email = %s", (person.email,))
            row = cursor.fetchone()
            if row is not None and row[0] in (person.acked, *person.pending):
                ok += 1
        return ok

    def summary(self) -> dict:
        """The figures of the run, for the one-line summary and artifacts."""
        return {"scenario": self.name, "respondents": len(self.respondents),
                "seconds": round(self.seconds, 1), "requests": len(self.requests),
                "failed": len(self.failed()), "statuses": self.statuses,
                "answers_acknowledged": sum(p.acks for p in self.respondents),
                "respondents_acknowledged": self.acknowledged}

    def line(self) -> str:
        """One line: the run's figures."""
        s = self.summary()
        return (f"load {self.name}: {s['respondents']} respondents, {s['seconds']} s, "
                f"{s['requests']} requests, {s['failed']} failed, statuses {s['statuses']}, "
                f"{s['answers_acknowledged']} answers acknowledged "
                f"({s['respondents_acknowledged']} respondents)")


class Generator:
    """Runs respondents in threads for a bounded time (`start`, then `wait`)."""

    def __init__(self, name: str, users: int = 20, seconds: float = 25.0,
                 sources: list[str] | None = None) -> None:
        self.name, self.seconds = name, seconds
        run = f"{int(time.time())}-{random.randint(1000, 9999)}"
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.respondents = [
            Respondent(f"load-{run}-{i}@example.com",
                       sources[i % len(sources)] if sources else None, [], self.started)
            for i in range(users)]
        self.threads: list[threading.Thread] = []

    def start(self) -> Generator:
        """Start every respondent; returns self."""
        deadline = self.started + self.seconds
        for person in self.respondents:
            thread = threading.Thread(target=person.run, args=(deadline, self.stop),
                                      daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def wait(self) -> Load:
        """Wait for every respondent (bounded); the finished run, its line printed."""
        for thread in self.threads:
            thread.join(timeout=self.seconds + 2 * TIMEOUT)
        self.stop.set()
        load = Load(self.name, self.respondents, self.elapsed())
        print(load.line())
        return load


def write_figures(path, scenario: str, figures: dict) -> None:
    """Merge one scenario's figures into the JSON file at `path`."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data[scenario] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
