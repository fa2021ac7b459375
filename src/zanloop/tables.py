"""Imports every area's tables so that ``Base.metadata`` knows the whole schema."""

from zanloop.bindings.tables import PayerBinding, PayerBindingEvent
from zanloop.campaigns.tables import (
    Campaign,
    CampaignEvent,
    CampaignProgress,
    CampaignReward,
    LikePrompt,
)
from zanloop.coupons.tables import Coupon, CouponTemplate
from zanloop.db import Base
from zanloop.fraud.tables import FraudAction, FraudFinding, FraudFindingMember, FraudScan
from zanloop.idempotency.tables import IdempotencyRecord
from zanloop.jobs.tables import Job
from zanloop.ledger.tables import LedgerAccount, LedgerEntry, LedgerHold, LedgerTransfer
from zanloop.loyalty.tables import (
    CatalogueItem,
    LoyaltyEvent,
    LoyaltyLot,
    LoyaltyMember,
    LoyaltyProgramme,
    LoyaltyRule,
    LoyaltyTask,
    LoyaltyTaskProgress,
    LoyaltyTierChange,
    Redemption,
)
from zanloop.payments.tables import (
    PaymentOrder,
    PaymentProviderConfig,
    ProviderNotification,
    Refund,
)
from zanloop.pins.tables import Content, Creator, Pin, PinNotice, PinPolicyRow
from zanloop.quotas.tables import QuotaCounter
from zanloop.risk.tables import (
    RiskAudit,
    RiskDecision,
    RiskListEntry,
    RiskPolicy,
    RiskReview,
    RiskSignal,
)
from zanloop.sandbox.tables import (
    SandboxMerchant,
    SandboxNotification,
    SandboxOrder,
    SandboxPlatformKey,
    SandboxRefund,
)
from zanloop.tenancy.tables import ApiKey, Tenant
from zanloop.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "Campaign",
    "CampaignEvent",
    "CampaignProgress",
    "CampaignReward",
    "CatalogueItem",
    "Content",
    "Coupon",
    "CouponTemplate",
    "Creator",
    "FraudAction",
    "FraudFinding",
    "FraudFindingMember",
    "FraudScan",
    "IdempotencyRecord",
    "Job",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHold",
    "LedgerTransfer",
    "LikePrompt",
    "LoyaltyEvent",
    "LoyaltyLot",
    "LoyaltyMember",
    "LoyaltyProgramme",
    "LoyaltyRule",
    "LoyaltyTask",
    "LoyaltyTaskProgress",
    "LoyaltyTierChange",
    "PayerBinding",
    "PayerBindingEvent",
    "PaymentOrder",
    "PaymentProviderConfig",
    "Pin",
    "PinNotice",
    "PinPolicyRow",
    "ProviderNotification",
    "QuotaCounter",
    "Redemption",
    "Refund",
    "RiskAudit",
    "RiskDecision",
    "RiskListEntry",
    "RiskPolicy",
    "RiskReview",
    "RiskSignal",
    "SandboxMerchant",
    "SandboxNotification",
    "SandboxOrder",
    "SandboxPlatformKey",
    "SandboxRefund",
    "Tenant",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "metadata",
]
