from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.campaigns import explanations, metrics, schemas, service
from zanloop.campaigns.domain import CampaignStatus, PromptStatus
from zanloop.campaigns.tables import Campaign, CampaignReward
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.clock import utcnow
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(tags=["campaigns"], responses=PROBLEM_RESPONSES)
Merchant = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
Buyer = Annotated[Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=False))]
Analyst = Annotated[
    Writer, Depends(writer(require(Scope.ANALYST, Scope.MERCHANT), key_required=False))
]
Reader = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.ANALYST))]
AppReader = Annotated[Principal, Depends(require(Scope.APP, Scope.MERCHANT, Scope.ANALYST))]
Id = Annotated[str, Path(pattern=NO_NUL, max_length=40)]
UserId = Annotated[str, Path(pattern=NO_NUL, max_length=200)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _campaign(c: Campaign) -> schemas.Campaign:
    return schemas.Campaign(
        id=c.id,
        name=c.name,
        trigger=c.trigger,
        status=CampaignStatus(c.status),
        rule=c.document,
        version=c.version,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _verdict(v: explanations.Verdict) -> schemas.Verdict:
    return schemas.Verdict.model_validate(asdict(v))


def _explained(e: explanations.EventExplanation) -> schemas.EventExplanation:
    return schemas.EventExplanation(
        event_id=e.event_id,
        trigger=e.trigger,
        user_id=e.user_id,
        occurred_at=e.occurred_at,
        facts=e.facts,
        verdicts=[_verdict(v) for v in e.verdicts],
    )


# Campaigns -----------------------------------------------------------------------------------


@router.post(
    "/v1/campaigns",
    response_model=schemas.Campaign,
    status_code=201,
    summary="Create a campaign: a rule (trigger, conditions, effects) with budget and caps",
)
def create_campaign(body: schemas.CampaignCreate, write: Merchant) -> Response:
    return write(
        lambda session: _campaign(
            service.create_campaign(session, write.tenant_id, body.name, body.rule, body.status)
        ),
        status_code=201,
    )


@router.get("/v1/campaigns", response_model=Page[schemas.Campaign], summary="Campaigns")
def list_campaigns(
    session: ReadSession,
    principal: Reader,
    status: CampaignStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Campaign]:
    rows = service.list_campaigns(
        session,
        principal.tenant_id,
        status.value if status else None,
        cursor_key(cursor, str),
        limit + 1,
    )
    page, next_cursor = split_page(rows, limit, lambda c: c.id)
    return Page(data=[_campaign(c) for c in page], next_cursor=next_cursor)


@router.get("/v1/campaigns/{campaign_id}", response_model=schemas.Campaign, summary="A campaign")
def get_campaign(campaign_id: Id, session: ReadSession, principal: Reader) -> schemas.Campaign:
    return _campaign(service.get_campaign(session, principal.tenant_id, campaign_id))


@router.patch(
    "/v1/campaigns/{campaign_id}",
    response_model=schemas.Campaign,
    summary="Rename, change the rule, pause, resume or end a campaign",
)
def update_campaign(campaign_id: Id, body: schemas.CampaignUpdate, write: Merchant) -> Response:
    return write(
        lambda session: _campaign(
            service.update_campaign(
                session,
                write.tenant_id,
                campaign_id,
                name=body.name,
                rule=body.rule,
                status=body.status,
            )
        )
    )


@router.get(
    "/v1/campaigns/{campaign_id}/metrics",
    response_model=schemas.CampaignMetrics,
    summary="Like, share, reward redemption and repurchase rates; discount against spend",
)
def campaign_metrics(
    campaign_id: Id, session: ReadSession, principal: Reader
) -> schemas.CampaignMetrics:
    return metrics.campaign_metrics(session, principal.tenant_id, campaign_id)


# Simulate and explain ------------------------------------------------------------------------


@router.post(
    "/v1/campaigns/simulate",
    response_model=schemas.Simulation,
    summary="Dry run: what the live campaigns would make of an event (nothing is written)",
)
def simulate(
    body: schemas.SimulatedEvent, session: ReadSession, principal: Reader
) -> schemas.Simulation:
    result = explanations.simulate(
        session,
        principal.tenant_id,
        body.trigger,
        body.at or utcnow(),
        body.user_id,
        body.amount_fen,
        body.store_id,
        body.categories,
        body.first_purchase,
        body.tier,
    )
    return schemas.Simulation(
        trigger=result.trigger,
        facts=result.facts,
        verdicts=[_verdict(v) for v in result.verdicts],
    )


@router.get(
    "/v1/campaigns/explain/orders/{order_id}",
    response_model=schemas.OrderExplanation,
    summary="Why a payment, and the like and share on it, did or did not earn rewards",
)
def explain_order(
    order_id: Id, session: ReadSession, principal: AppReader
) -> schemas.OrderExplanation:
    e = explanations.explain_order(session, principal.tenant_id, order_id)
    return schemas.OrderExplanation(
        order_id=e.order_id,
        status=e.status,
        summary=e.summary,
        events=[_explained(x) for x in e.events],
    )


@router.get(
    "/v1/campaigns/explain/events/{event_id}",
    response_model=schemas.EventExplanation,
    summary="Why one evaluated event did or did not earn rewards",
)
def explain_event(
    event_id: Id, session: ReadSession, principal: AppReader
) -> schemas.EventExplanation:
    return _explained(explanations.explain_event_by_id(session, principal.tenant_id, event_id))


# Prompts, likes and shares -------------------------------------------------------------------


@router.get(
    "/v1/users/{user_id}/prompts",
    response_model=list[schemas.Prompt],
    summary="A user's like prompts, newest first",
)
def user_prompts(
    user_id: UserId,
    session: ReadSession,
    principal: AppReader,
    status: PromptStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> list[schemas.Prompt]:
    prompts = service.user_prompts(
        session, principal.tenant_id, user_id, status.value if status else None, limit
    )
    return [schemas.Prompt.model_validate(p) for p in prompts]


@router.get("/v1/prompts/{prompt_id}", response_model=schemas.Prompt, summary="A like prompt")
def get_prompt(prompt_id: Id, session: ReadSession, principal: AppReader) -> schemas.Prompt:
    return schemas.Prompt.model_validate(
        service.get_prompt(session, principal.tenant_id, prompt_id)
    )


def _interaction(session: Session, result: service.Interaction) -> schemas.Interaction:
    verdicts = []
    if result.event is not None:
        verdicts = [_verdict(v) for v in explanations.explain_event(session, result.event).verdicts]
    return schemas.Interaction(
        prompt=schemas.Prompt.model_validate(result.prompt),
        rewards=verdicts,
        replayed=result.replayed,
    )


@router.post(
    "/v1/prompts/{prompt_id}/like",
    response_model=schemas.Interaction,
    summary="The buyer likes the purchase (once per payment); returns what it earned",
)
def like(prompt_id: Id, body: schemas.LikeCreate, write: Buyer) -> Response:
    return write(
        lambda session: _interaction(
            session,
            service.like(session, write.tenant_id, prompt_id, device_id=body.device_id, ip=body.ip),
        )
    )


@router.post(
    "/v1/prompts/{prompt_id}/share",
    response_model=schemas.Interaction,
    summary="The buyer shares the liked purchase; returns what it earned",
)
def share(prompt_id: Id, body: schemas.ShareCreate, write: Buyer) -> Response:
    return write(
        lambda session: _interaction(
            session, service.share(session, write.tenant_id, prompt_id, body.channel)
        )
    )


# Rewards -------------------------------------------------------------------------------------


def _reward(r: CampaignReward) -> schemas.Reward:
    return schemas.Reward.model_validate(r)


@router.get(
    "/v1/campaign-rewards",
    response_model=Page[schemas.Reward],
    summary="Rewards granted, held or reversed, newest first",
)
def list_rewards(
    session: ReadSession,
    principal: AppReader,
    user_id: str | None = None,
    campaign_id: str | None = None,
    order_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Reward]:
    rows = service.list_rewards(
        session,
        principal.tenant_id,
        user_id=user_id,
        campaign_id=campaign_id,
        order_id=order_id,
        status=status,
        before_id=cursor_key(cursor, str),
        limit=limit + 1,
    )
    page, next_cursor = split_page(rows, limit, lambda r: r.id)
    return Page(data=[_reward(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/v1/campaign-rewards/{reward_id}/review",
    response_model=schemas.Reward,
    summary="Approve (grant now) or reject a reward that risk control held",
)
def review_reward(reward_id: Id, body: schemas.ReviewDecision, write: Analyst) -> Response:
    return write(
        lambda session: _reward(
            service.resolve_held(
                session,
                write.tenant_id,
                reward_id,
                approve=body.approve,
                actor=write.principal.key_id,
            )
        )
    )
