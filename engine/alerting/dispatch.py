"""The dispatcher: delivers queued alerts, at least once, with retries and backoff.

A delivery is claimed in one short transaction (attempts counted, a lease taken), sent
outside any transaction, then marked delivered, rescheduled with exponential backoff, or
dead after ``alert_max_attempts``. A dispatcher killed between claim and mark leaves the
lease to expire, and the next one sends the same alert again under the same idempotency
key: receivers deduplicate on it. Silences and digests are applied here, at send time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.alerting import digests, notify, routes, silences
from engine.alerting.outbox import OBJECTIVE
from engine.alerting.readable import readable
from engine.clock import now
from engine.settings import Settings
from engine.storage.schema import AlertRow, DeliveryRow, OutcomeRow
from rules.models import Catalog, Silence

log = logging.getLogger("promise.dispatcher")


@dataclass(frozen=True)
class Job:
    delivery_id: int
    attempts: int
    route: dict[str, Any]
    message: dict[str, Any]


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        sessions: sessionmaker[Session],
        environ: Mapping[str, str] = os.environ,
    ):
        self.settings = settings
        self.environ = environ
        self.catalog = catalog
        self.sessions = sessions
        self.client = httpx.Client(timeout=settings.webhook_timeout_seconds)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="deliver")

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        """A new catalog brings its routes' webhook secrets, resolved once, here."""
        self._catalog = catalog
        self.secrets = routes.secrets(catalog, self.environ)

    def close(self) -> None:
        self.pool.shutdown()
        self.client.close()

    def run_once(self, batch: int = 32) -> int:
        """Make digests that are due, then send what is due; returns deliveries attempted.

        Each route gets its deliveries in order, and routes are served in parallel, so a
        receiver that hangs until the timeout holds up only its own alerts.
        """
        moment = now()
        with self.sessions.begin() as session:
            periods = digests.effective(session, self.catalog)
            self._hold(session, [team for team, every in periods.items() if every])
            self._digest(session, moment, periods)
        jobs = self._claim(moment, batch)
        by_route: dict[str, list[Job]] = {}
        for job in jobs:
            by_route.setdefault(orjson.dumps(job.route, option=orjson.OPT_SORT_KEYS), []).append(
                job
            )
        list(self.pool.map(self._deliver_in_order, by_route.values()))
        return len(jobs)

    def _deliver_in_order(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._deliver(job)

    # --- claiming ----------------------------------------------------------------------------

    def _claim(self, moment: datetime, batch: int) -> list[Job]:
        lease = moment + timedelta(seconds=self.settings.alert_lease_seconds)
        with self.sessions.begin() as session:
            query = (
                select(DeliveryRow)
                .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= moment)
                .order_by(DeliveryRow.id)
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            deliveries = list(session.scalars(query))
            alerts = _by_id(session, {d.alert_id for d in deliveries})
            muting = silences.active(session, self.catalog, moment)
            jobs = []
            for delivery in deliveries:
                alert = alerts[delivery.alert_id]
                muted = self._muted(session, alert, delivery, muting, moment)
                if muted:
                    delivery.status, delivery.last_error = "silenced", muted
                    continue
                delivery.attempts += 1
                delivery.next_attempt_at = lease
                message = self._message(session, alert, delivery.route)
                jobs.append(Job(delivery.id, delivery.attempts, dict(delivery.route), message))
            return jobs

    @staticmethod
    def _muted(
        session: Session,
        alert: AlertRow,
        delivery: DeliveryRow,
        silences: list[Silence],
        moment: datetime,
    ) -> str | None:
        """Why this delivery is not to be sent, if it is silenced."""
        # A correction of an alert nobody received would only confuse.
        if (
            alert.kind == "correction"
            and _route_status(session, alert.corrects, delivery.route) == "silenced"
        ):
            return f"silenced: corrects {routes.alert_key(alert.corrects or 0)}, which was silenced"
        for silence in silences:
            if alert.kind != "digest" and silence.covers(
                alert.team, alert.promise_id or "", moment
            ):
                until = silence.ends.isoformat()
                return f"silenced: {silence.reason} (by {silence.by}, until {until})"
        return None

    def _message(self, session: Session, alert: AlertRow, route: dict[str, Any]) -> dict[str, Any]:
        """The payload receivers get (and templates render)."""
        if alert.kind != "digest":
            return self._single(session, alert)
        included = session.scalars(
            select(AlertRow)
            .join(DeliveryRow, DeliveryRow.alert_id == AlertRow.id)
            .where(DeliveryRow.digest_id == alert.id)
            .order_by(AlertRow.id)
        ).all()
        seen = {a.id: a for a in included}  # one row per route: list each alert once
        return {
            "id": routes.alert_key(alert.id),
            "kind": "digest",
            "team": alert.team,
            "created_at": alert.created_at.isoformat(),
            "alerts": [self._single(session, a) for a in seen.values()],
        }

    def _single(self, session: Session, alert: AlertRow) -> dict[str, Any]:
        outcome = alert.outcome or {}
        outcome_id = session.scalar(
            select(OutcomeRow.id).where(
                OutcomeRow.promise_id == alert.promise_id, OutcomeRow.key == alert.outcome_key
            )
        )
        promise = self.catalog.promises.get(alert.promise_id or "")
        base = self.settings.public_url.rstrip("/")
        page = _dashboard_link(base, alert, outcome_id)
        return {
            "id": routes.alert_key(alert.id),
            "kind": alert.kind,
            "promise": alert.promise_id,
            "title": promise.title if promise else alert.promise_id,
            "team": alert.team,
            "state": alert.state,
            "customer_id": alert.customer_id,
            "scope": outcome.get("scope"),
            "opened_at": outcome.get("opened_at"),
            "due_at": outcome.get("due_at"),
            "decided_at": outcome.get("decided_at"),
            "evidence": outcome.get("evidence", []),
            "reason": alert.reason,
            "corrects": routes.alert_key(alert.corrects) if alert.corrects else None,
            "created_at": alert.created_at.isoformat(),
            "outcome_id": outcome_id,
            "link": f"{base}/outcomes/{outcome_id}" if outcome_id else None,
            **readable(
                session,
                self.catalog,
                alert.promise_id or "",
                alert.outcome,
                alert.outcome_key or "",
                alert.state,
                page,
            ),
        }

    # --- sending -----------------------------------------------------------------------------

    def _deliver(self, job: Job) -> None:
        try:
            notify.send(job.route, job.message, self.settings, self.client, self.secrets)
        except notify.DeliveryFailed as exc:
            self._failed(job, str(exc))
            return
        with self.sessions.begin() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == job.delivery_id)
                .values(status="delivered", delivered_at=now(), last_error=None)
            )

    def _failed(self, job: Job, error: str) -> None:
        dead = job.attempts >= self.settings.alert_max_attempts
        wait = min(
            self.settings.alert_backoff_seconds * 2 ** (job.attempts - 1),
            self.settings.alert_backoff_max_seconds,
        )
        log.warning(
            "%s attempt %d failed%s: %s",
            job.message["id"],
            job.attempts,
            " (dead: no more attempts)" if dead else f"; retrying in {wait:.1f}s",
            error,
        )
        with self.sessions.begin() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == job.delivery_id)
                .values(
                    status="dead" if dead else "pending",
                    next_attempt_at=now() + timedelta(seconds=wait),
                    last_error=error[:1024],
                )
            )

    # --- digests -----------------------------------------------------------------------------

    @staticmethod
    def _hold(session: Session, teams: list[str]) -> None:
        """New deliveries of teams that want digests wait for the next digest."""
        if teams:
            session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.status == "pending",
                    DeliveryRow.attempts == 0,
                    DeliveryRow.alert_id.in_(
                        select(AlertRow.id).where(
                            AlertRow.team.in_(teams), AlertRow.kind != "digest"
                        )
                    ),
                )
                .values(status="held")
                .execution_options(synchronize_session=False)
            )

    def _digest(
        self, session: Session, moment: datetime, periods: dict[str, timedelta | None]
    ) -> None:
        """Fold each team's held deliveries into one digest per period; release held
        deliveries of teams that no longer want digests."""
        held_teams = session.scalars(
            select(AlertRow.team)
            .join(DeliveryRow, DeliveryRow.alert_id == AlertRow.id)
            .where(DeliveryRow.status == "held")
            .distinct()
        ).all()
        muting = silences.active(session, self.catalog, moment)
        for team_id in held_teams:
            every = periods.get(team_id)
            held = _held(session, team_id)
            if every is None:
                for delivery in held:
                    delivery.status = "pending"
                continue
            last = session.scalar(
                select(func.max(AlertRow.created_at)).where(
                    AlertRow.team == team_id, AlertRow.kind == "digest"
                )
            )
            if last is not None and moment - last < every:
                continue
            alerts = _by_id(session, {d.alert_id for d in held})
            to_send = []
            for delivery in held:
                muted = self._muted(session, alerts[delivery.alert_id], delivery, muting, moment)
                if muted:
                    delivery.status, delivery.last_error = "silenced", muted
                else:
                    to_send.append(delivery)
            if not to_send:
                continue
            digest = AlertRow(
                kind="digest",
                team=team_id,
                state="digest",
                reason=f"{len({d.alert_id for d in to_send})} alert(s) held for the digest",
                created_at=moment,
            )
            session.add(digest)
            session.flush()
            team_routes = []
            for delivery in to_send:
                delivery.status, delivery.digest_id = "digested", digest.id
                if delivery.route not in team_routes:
                    team_routes.append(delivery.route)
            session.add_all(
                DeliveryRow(
                    alert_id=digest.id,
                    route=route,
                    status="pending",
                    attempts=0,
                    next_attempt_at=moment,
                )
                for route in team_routes
            )


def _by_id(session: Session, ids: set[int]) -> dict[int, AlertRow]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(AlertRow).where(AlertRow.id.in_(ids)))}


def _held(session: Session, team: str) -> list[DeliveryRow]:
    return list(
        session.scalars(
            select(DeliveryRow)
            .join(AlertRow, DeliveryRow.alert_id == AlertRow.id)
            .where(DeliveryRow.status == "held", AlertRow.team == team)
            .order_by(DeliveryRow.id)
        )
    )


def _route_status(session: Session, alert_id: int | None, route: dict[str, Any]) -> str | None:
    """The status of ``alert_id``'s delivery on ``route`` (routes are JSON: compared here)."""
    rows = session.execute(
        select(DeliveryRow.route, DeliveryRow.status).where(DeliveryRow.alert_id == alert_id)
    )
    return next((status for r, status in rows if r == route), None)


def _dashboard_link(base: str, alert: AlertRow, outcome_id: int | None) -> str | None:
    """The dashboard page people follow: the outcome's; for an objective alert, which is on
    the whole promise, the promise's (its attainment and latest outcomes)."""
    if outcome_id:
        return f"{base}/ui/outcomes/{outcome_id}"
    if alert.kind == OBJECTIVE and alert.promise_id:
        return f"{base}/ui/promises/{quote(alert.promise_id, safe='')}"
    return None
