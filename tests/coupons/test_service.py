"""The Python API other areas call in-process (campaigns issue and revoke rewards, and read
figures by source): issue, revoke, face_value_fen and stats, in a session of their own."""

from __future__ import annotations

import pytest

from tests.coupons.conftest import Shop
from zanloop.coupons import service
from zanloop.db import Database
from zanloop.errors import CouponUnavailable, DuplicateConflict, NotFound


def test_issue_is_idempotent_by_request_number(shop: Shop, db: Database) -> None:
    template = shop.template(stock=2)

    with db.session() as session:
        first = service.issue(
            session, shop.tenant.id, template["id"], "u1", "rwd_1", source="campaign:cmp_1:rwd_1"
        )
        again = service.issue(session, shop.tenant.id, template["id"], "u1", "rwd_1")
        with pytest.raises(DuplicateConflict):
            service.issue(session, shop.tenant.id, template["id"], "u2", "rwd_1")

    assert (first.created, again.created) == (True, False)
    assert again.coupon.id == first.coupon.id
    assert first.coupon.source == "campaign:cmp_1:rwd_1"
    assert shop.coupon(first.coupon.id)["status"] == "AVAILABLE"


def test_issue_refusals_say_which_limit(shop: Shop, db: Database) -> None:
    template = shop.template(stock=1)
    shop.issued(template["id"], "u1")

    with db.session() as session, pytest.raises(CouponUnavailable) as refused:
        service.issue(session, shop.tenant.id, template["id"], "u2", "r")
    with db.session() as session, pytest.raises(NotFound):
        service.issue(session, shop.tenant.id, "ctpl_nope", "u2", "r")

    assert refused.value.status_code == 409
    assert refused.value.extensions == {"reason": "stock"}


def test_revoke_takes_back_only_an_unused_coupon(shop: Shop, db: Database) -> None:
    template = shop.template(stock=2, budget_fen=1000, per_user_limit=2)
    unused = shop.issued(template["id"], "u1")
    used = shop.issued(template["id"], "u1")
    shop.pay(shop.checked_out("u1", 1000, used["id"]))

    with db.session() as session:
        revoked = service.revoke(session, shop.tenant.id, unused["id"], "payment refunded")
        unchanged = service.revoke(session, shop.tenant.id, used["id"], "payment refunded")
        twice = service.revoke(session, shop.tenant.id, unused["id"], "payment refunded")

    assert (revoked.status, unchanged.status, twice.status) == ("REVOKED", "REDEEMED", "REVOKED")
    figures = shop.get_template(template["id"])
    assert (figures["stock_left"], figures["budget_left"]) == (1, 500)
    assert shop.issue(template["id"], "u1").status_code == 201


def test_face_value(shop: Shop, db: Database) -> None:
    fixed = shop.template(amount_fen=700)
    capped = shop.template(kind="PERCENT", amount_fen=None, percent_off=10, max_discount_fen=300)
    uncapped = shop.template(kind="PERCENT", amount_fen=None, percent_off=10)

    with db.read_session() as session:
        values = [
            service.face_value_fen(session, shop.tenant.id, t["id"])
            for t in (fixed, capped, uncapped)
        ]

    assert values == [700, 300, 0]


def test_stats_by_source_prefix(shop: Shop, db: Database) -> None:
    template = shop.template()
    with db.session() as session:
        ours = [
            service.issue(
                session, shop.tenant.id, template["id"], f"u{i}", f"r{i}", f"campaign:cmp_1:r{i}"
            ).coupon.id
            for i in range(2)
        ]
        # "_" must not match any character: cmpX1 is another campaign
        service.issue(session, shop.tenant.id, template["id"], "u9", "r9", "campaign:cmpX1:r9")
    shop.pay(shop.checked_out("u0", 2000, ours[0]))

    with db.read_session() as session:
        stats = service.stats(session, shop.tenant.id, source_prefix="campaign:cmp_1:")
        everything = service.stats(session, shop.tenant.id, template_id=template["id"])

    assert stats == service.CouponStats(
        issued=2,
        redeemed=1,
        expired=0,
        revoked=0,
        discount_fen=500,
        spend_fen=1500,
        list_fen=2000,
    )
    assert everything.issued == 3
