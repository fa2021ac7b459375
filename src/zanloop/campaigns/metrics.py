"""Merchant metrics of a campaign (C6, K4): like rate, share rate, reward redemption rate,
repurchase rate, and what its coupons cost against the spend they drove."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop.campaigns import repository, service
from zanloop.campaigns.domain import ratio
from zanloop.campaigns.schemas import CampaignMetrics
from zanloop.coupons import service as coupons


def campaign_metrics(session: Session, tenant_id: str, campaign_id: str) -> CampaignMetrics:
    """Like rate = likes / prompts; share rate = shares / likes; reward redemption rate =
    coupons redeemed / coupons issued by the campaign; repurchase rate = rewarded users who
    paid again (two or more payments on record) / rewarded users."""
    campaign = service.get_campaign(session, tenant_id, campaign_id)
    prompts, likes, shares = repository.prompt_counts(session, tenant_id, campaign.id)
    counts = repository.reward_counts(session, tenant_id, campaign.id)
    stats = coupons.stats(session, tenant_id, source_prefix=f"campaign:{campaign.id}:")
    users = repository.rewarded_users(session, tenant_id, campaign.id)
    payments = repository.payment_events_by_user(session, tenant_id, users) if users else {}
    again = sum(1 for u in users if payments.get(u, 0) >= 2)
    return CampaignMetrics(
        campaign_id=campaign.id,
        prompts=prompts,
        likes=likes,
        shares=shares,
        like_rate=ratio(likes, prompts),
        share_rate=ratio(shares, likes),
        rewards_granted=counts.get("GRANTED", 0),
        rewards_held=counts.get("HELD", 0),
        rewards_reversed=counts.get("REVERSED", 0) + counts.get("REJECTED", 0),
        coupons_issued=stats.issued,
        coupons_redeemed=stats.redeemed,
        reward_redemption_rate=ratio(stats.redeemed, stats.issued),
        discount_fen=stats.discount_fen,
        spend_fen=stats.spend_fen,
        leverage=ratio(stats.spend_fen, stats.discount_fen),
        rewarded_users=len(users),
        repurchasers=again,
        repurchase_rate=ratio(again, len(users)),
    )
