"""K2 expiry: a coupon past its expiry is unusable at once (reads say EXPIRED), and the job
marks it so; a template past its end issues nothing; a coupon freed after its expiry is
EXPIRED, not AVAILABLE."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import update

from tests.coupons.conftest import Shop
from zanloop.coupons import service
from zanloop.coupons.tables import Coupon, CouponTemplate
from zanloop.db import Database
from zanloop.kit.clock import utcnow


def _time_passes(db: Database, template_id: str) -> None:
    """The template's end and its coupons' expiry move a second into the past: what waiting
    for them would do, without a test that sleeps (and flakes on a busy machine)."""
    past = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        session.execute(
            update(CouponTemplate).where(CouponTemplate.id == template_id).values(valid_until=past)
        )
        session.execute(
            update(Coupon).where(Coupon.template_id == template_id).values(expires_at=past)
        )


def test_coupons_expire_with_their_template(shop: Shop, db: Database) -> None:
    # given: a template that ends; one coupon kept, one held by a checkout
    until = utcnow() + timedelta(days=1)
    template = shop.template(valid_days=None, valid_until=until.isoformat())
    kept = shop.issued(template["id"], "u1")
    held = shop.issued(template["id"], "u1")
    checkout = shop.checked_out("u1", 1000, held["id"])
    assert datetime.fromisoformat(kept["expires_at"]) == until

    # when: the end passes
    _time_passes(db, template["id"])

    # then: reads and checkouts treat the coupon as expired before the job runs
    assert shop.coupon(kept["id"])["status"] == "EXPIRED"
    refused = shop.checkout("u1", 1000, kept["id"])
    assert refused.status_code == 409
    assert refused.json()["reason"] == "expired"
    issue = shop.issue(template["id"], "u2")
    assert issue.status_code == 409
    assert issue.json()["reason"] == "ended"
    listed = shop.client.get(
        "/v1/users/u1/coupons?status=EXPIRED", headers=shop.tenant.headers
    ).json()
    assert [c["id"] for c in listed["data"]] == [kept["id"]]
    available = shop.client.get(
        "/v1/users/u1/coupons?status=AVAILABLE", headers=shop.tenant.headers
    ).json()
    assert available["data"] == []

    # and: the job marks it EXPIRED; the held one stays LOCKED until its payment settles
    shop.worker.schedule_periodic()
    shop.worker.drain()
    with db.read_session() as session:
        assert service.get_coupon(session, shop.tenant.id, kept["id"]).status == "EXPIRED"
        assert service.get_coupon(session, shop.tenant.id, held["id"]).status == "LOCKED"

    # and: the held coupon, freed after its expiry, is EXPIRED
    shop.close(checkout)
    assert shop.coupon(held["id"])["status"] == "EXPIRED"


def test_the_expiry_job_expires_every_tenants_coupons_once(
    shop: Shop, make_shop: Callable[[], Shop], db: Database
) -> None:
    other = make_shop()
    coupons = [shop.issued(shop.template(valid_days=1)["id"], f"u{i}") for i in range(2)]
    coupons.append(other.issued(other.template(valid_days=1)["id"], "u1"))
    expires_at = min(datetime.fromisoformat(c["expires_at"]) for c in coupons)

    with db.session() as session:
        early = service.expire_due(session, expires_at - timedelta(seconds=1))
    with db.session() as session:
        due = service.expire_due(session, utcnow() + timedelta(days=2))
    with db.session() as session:
        again = service.expire_due(session, utcnow() + timedelta(days=2))

    assert (early, due, again) == (0, 3, 0)
