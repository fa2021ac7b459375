"""What a campaign's rewards do, and how each is taken back: coupons issued and revoked,
points posted and reversed in the ledger, steps on a progress track counted up and down."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.campaigns import domain, repository
from zanloop.campaigns.tables import CampaignReward
from zanloop.coupons import service as coupons
from zanloop.errors import (
    CouponUnavailable,
    NotFound,
)
from zanloop.kit.clock import utcnow
from zanloop.loyalty import service as loyalty
from zanloop.rules.domain import (
    GrantPoints,
    IssueCoupon,
    ProgressTier,
    RuleDocument,
)


def points_owner(user_id: str) -> str:
    return f"user:{user_id}"


def _issuer(campaign_id: str) -> str:
    # Points are issued by the campaign's own account (negative: what it has given out).
    return f"campaign:{campaign_id}"


def coupon_effects(document: RuleDocument) -> list[tuple[str, IssueCoupon]]:
    found: list[tuple[str, IssueCoupon]] = []
    for i, effect in enumerate(document.effects):
        if isinstance(effect, IssueCoupon):
            found.append((f"effects.{i}", effect))
        elif isinstance(effect, ProgressTier):
            found.extend(
                (f"effects.{i}.reward.{j}", r)
                for j, r in enumerate(effect.reward)
                if isinstance(r, IssueCoupon)
            )
    return found


def coupon_face_fen(session: Session, tenant_id: str, template_id: str) -> int:
    try:
        return coupons.face_value_fen(session, tenant_id, template_id)
    except NotFound:
        return 0


def apply_rewards(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    document: RuleDocument,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for i, effect in enumerate(document.effects):
        if isinstance(effect, IssueCoupon | GrantPoints):
            results.append(_grant(session, tenant_id, campaign_id, reward, effect, f"{i}"))
        elif isinstance(effect, ProgressTier):
            results.append(_progress(session, tenant_id, campaign_id, reward, effect, i))
    return results


def _grant(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    effect: IssueCoupon | GrantPoints,
    slot: str,
) -> dict[str, Any]:
    if isinstance(effect, GrantPoints):
        # A lot of the points programme: spent, expired and clawed back like any other points.
        transfer_id = f"campaign-reward:{reward.id}:{slot}"
        lot = loyalty.grant(
            session,
            tenant_id,
            reward.user_id,
            effect.points,
            ref=f"campaign:{reward.id}:{slot}",
            transfer_id=transfer_id,
            issuer=_issuer(campaign_id),
            description=f"campaign {campaign_id} reward",
            metadata={"campaign_id": campaign_id, "reward_id": reward.id},
        )
        return {
            "type": "grant_points",
            "points": effect.points,
            "transfer_id": transfer_id,
            "lot_ref": lot.ref,
        }
    try:
        issued = coupons.issue(
            session,
            tenant_id,
            effect.template_id,
            reward.user_id,
            f"{reward.id}:{slot}",
            source=f"campaign:{campaign_id}:{reward.id}",
        )
    except (CouponUnavailable, NotFound) as exc:
        return {"type": "issue_coupon", "template_id": effect.template_id, "refused": str(exc)}
    return {
        "type": "issue_coupon",
        "template_id": effect.template_id,
        "coupon_id": issued.coupon.id,
    }


def _progress(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    effect: ProgressTier,
    index: int,
) -> dict[str, Any]:
    progress = repository.lock_progress(session, tenant_id, campaign_id, reward.user_id)
    progress.count += 1
    result: dict[str, Any] = {"type": "progress_tier", "count": progress.count, "goal": effect.goal}
    if domain.completions_allowed(effect, progress.count) > progress.completions:
        progress.completions += 1
        if effect.tier is not None:
            progress.tier = effect.tier
        result["completed"] = progress.completions
        result["tier"] = effect.tier
        result["granted"] = [
            _grant(session, tenant_id, campaign_id, reward, r, f"{index}.{j}")
            for j, r in enumerate(effect.reward)
        ]
    progress.updated_at = utcnow()
    session.flush()
    return result


def take_back(
    session: Session, tenant_id: str, effect: dict[str, Any], reason: str
) -> dict[str, Any]:
    if effect.get("type") == "grant_points":
        clawed, owed = loyalty.claw_back(session, tenant_id, str(effect["lot_ref"]), reason)
        result: dict[str, Any] = {"type": "grant_points", "points": clawed}
        if owed:
            result["owed"] = owed
        return result
    coupon_id = effect.get("coupon_id")
    if coupon_id is None:
        return {"type": "issue_coupon", "coupon_id": None}
    coupon = coupons.revoke(session, tenant_id, str(coupon_id), reason)
    return {"type": "issue_coupon", "coupon_id": coupon_id, "status": coupon.status}


def step_back(
    session: Session,
    tenant_id: str,
    reward: CampaignReward,
    document: RuleDocument,
    reason: str,
) -> list[dict[str, Any]]:
    """Count the reward's step off the track; if the track now stands below a goal it had
    reached, the newest completion's grants are taken back too."""
    effect = next((e for e in document.effects if isinstance(e, ProgressTier)), None)
    progress = repository.lock_progress(session, tenant_id, reward.campaign_id, reward.user_id)
    progress.count = max(progress.count - 1, 0)
    undone: list[dict[str, Any]] = [{"type": "progress_tier", "count": progress.count}]
    allowed = domain.completions_allowed(effect, progress.count) if effect else progress.completions
    if progress.completions > allowed:
        for holder in repository.completing_rewards(
            session, tenant_id, reward.campaign_id, reward.user_id
        ):
            step = next((e for e in holder.effects if e.get("type") == "progress_tier"), None)
            if step is None or "completed" not in step or step.get("taken_back"):
                continue
            undone.extend(take_back(session, tenant_id, g, reason) for g in step.get("granted", []))
            holder.effects = [{**e, "taken_back": True} if e is step else e for e in holder.effects]
            break
        progress.completions = allowed
        if allowed == 0:
            progress.tier = None
    progress.updated_at = utcnow()
    session.flush()
    return undone
