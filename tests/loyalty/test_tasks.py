"""Tasks (L3): streaks with and without grace, repeats, achievements, limited-time counts, and
the claw-back of a completion that a reversed event no longer supports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.loyalty.conftest import Programme, event

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


def streak(days: int = 3, points: int = 200, **extra: Any) -> dict[str, Any]:
    return {"type": "streak", "trigger": "store.checkin", "days": days, "points": points, **extra}


def check_ins(user: str, *days_ago: int) -> list[dict[str, Any]]:
    return [event("store.checkin", user, local(d, 9), event_id=f"{user}-in-{d}") for d in days_ago]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def progress(p: Programme, user: str, task_id: str) -> dict[str, Any]:
    [found] = [t for t in p.tasks(user) if t["task_id"] == task_id]
    return found


def task_lots(p: Programme, user: str) -> list[dict[str, Any]]:
    return [lot for lot in p.lots(user) if lot["ref"].startswith("task:")]


def test_check_ins_on_days_in_a_row_complete_a_streak(programme: Programme) -> None:
    task = programme.task(streak(), name="Three days in a row")

    # 23:50 and 00:10 are two local days.
    result = programme.send(
        event("store.checkin", "ann", local(5, 9)),
        event("store.checkin", "ann", local(4, 23, 50)),
        event("store.checkin", "ann", local(3, 0, 10)),
    )

    assert result["balances"][0]["available"] == 200
    [lot] = task_lots(programme, "ann")
    assert (lot["ref"], lot["status"], lot["points"]) == (f"task:{task['id']}:1", "AVAILABLE", 200)
    seen = progress(programme, "ann", task["id"])
    assert (seen["name"], seen["completed"], seen["rewarded"], seen["goal"]) == (
        "Three days in a row",
        1,
        1,
        3,
    )


def test_a_missed_day_breaks_a_streak_unless_grace_covers_it(programme: Programme) -> None:
    programme.task(streak(grace_days=0), name="no grace")
    programme.task(
        {"type": "streak", "trigger": "like.created", "days": 3, "points": 30, "grace_days": 1},
        name="a day of grace",
    )

    # Three days with one missed, of each.
    result = programme.send(
        *check_ins("ann", 5, 4, 2),
        *[event("like.created", "ann", local(d, 9)) for d in (5, 4, 2)],
    )

    assert result["balances"][0]["available"] == 30
    assert {t["name"]: t["rewarded"] for t in programme.tasks("ann")} == {
        "no grace": 0,
        "a day of grace": 1,
    }


def test_a_streak_in_progress_shows_its_days_and_breaks_after_a_gap(programme: Programme) -> None:
    task = programme.task(streak(days=7))
    programme.send(*check_ins("ann", 5, 4, 2, 1))
    programme.send(*check_ins("bob", 4, 3))

    ann, bob = progress(programme, "ann", task["id"]), progress(programme, "bob", task["id"])

    assert (ann["progress"], ann["detail"], ann["completed"]) == (2, "2 of 7 days in a row", 0)
    assert bob["progress"] == 0  # nothing yesterday: the next check-in starts again


def test_a_repeating_streak_rewards_every_completion(programme: Programme) -> None:
    repeating = programme.task(streak(days=2, points=50))
    once = programme.task(
        {"type": "streak", "trigger": "like.created", "days": 2, "points": 7, "repeat": False}
    )

    # Six days in a row of each, one of them twice: a day counts once.
    programme.send(
        *check_ins("ann", 7, 6, 5, 4, 3, 2),
        *[event("like.created", "ann", local(d, 9)) for d in (7, 6, 5, 4, 3, 2)],
    )
    programme.send(event("store.checkin", "ann", local(2, 18)))

    assert programme.balance("ann")["available"] == 3 * 50 + 7
    assert progress(programme, "ann", repeating["id"])["rewarded"] == 3
    assert progress(programme, "ann", once["id"])["rewarded"] == 1
    assert len(task_lots(programme, "ann")) == 4


def test_an_achievement_is_rewarded_once(programme: Programme) -> None:
    task = programme.task(
        {"type": "achievement", "actions": ["share.created", "comment.created"], "points": 500}
    )
    programme.send(event("share.created", "ann", local(3, 9)))
    halfway = progress(programme, "ann", task["id"])
    assert (halfway["progress"], halfway["detail"]) == (1, "still to do: comment.created")

    programme.send(event("comment.created", "ann", local(2, 9)))
    programme.send(
        event("share.created", "ann", local(1, 9)), event("comment.created", "ann", local(1, 10))
    )

    assert programme.balance("ann")["available"] == 500
    done = progress(programme, "ann", task["id"])
    assert (done["completed"], done["rewarded"], done["detail"]) == (1, 1, "complete")


def test_a_count_task_counts_only_events_inside_its_window(programme: Programme) -> None:
    task = programme.task(
        {
            "type": "count",
            "trigger": "payment.succeeded",
            "goal": 2,
            "points": 100,
            "start": local(5, 0).isoformat(),
            "end": local(3, 0).isoformat(),
        }
    )

    def paid(at: datetime, n: str) -> dict[str, Any]:
        return event("payment.succeeded", "ann", at, amount_fen=1000, order_id=f"pos-{n}")

    before = programme.send(
        paid(local(6, 12), "early"),
        paid(local(4, 12), "inside"),
        paid(local(3, 0), "at-the-end"),
        paid(local(2, 12), "late"),
    )
    assert before["balances"][0]["available"] == 0
    assert progress(programme, "ann", task["id"])["detail"] == "1 of 2"

    after = programme.send(paid(local(5, 0), "at-the-start"), paid(local(4, 18), "inside-too"))

    seen = progress(programme, "ann", task["id"])
    assert (seen["completed"], seen["rewarded"], seen["progress"]) == (1, 1, 2)
    # The reward rests on payments still refundable: pending until the last window closes.
    # It completed with the payment at the start, resting on it and the first one inside.
    last_window = local(4, 12).astimezone(UTC) + timedelta(days=7)
    assert (after["balances"][0]["available"], after["balances"][0]["pending"]) == (0, 100)
    [lot] = task_lots(programme, "ann")
    assert (lot["status"], parse(lot["available_at"])) == ("PENDING", last_window)
    programme.run_jobs(last_window)
    assert programme.balance("ann")["available"] == 100


def test_a_task_reward_on_events_without_an_order_is_available_at_once(
    programme: Programme,
) -> None:
    programme.task(streak(days=2))

    result = programme.send(*check_ins("ann", 3, 2))

    assert (result["balances"][0]["available"], result["balances"][0]["pending"]) == (200, 0)


def test_reversing_a_counted_event_claws_back_the_task_reward(programme: Programme) -> None:
    task = programme.task(
        {"type": "achievement", "actions": ["share.created", "comment.created"], "points": 500}
    )
    programme.send(
        event("share.created", "ann", local(2, 9), event_id="share-1"),
        event("comment.created", "ann", local(2, 10), event_id="comment-1"),
    )
    assert programme.balance("ann")["available"] == 500

    reversal = programme.reverse("comment-1")

    assert reversal["balance"]["available"] == 0
    [lot] = task_lots(programme, "ann")
    assert (lot["status"], lot["clawed"]) == ("REVERSED", 500)
    seen = progress(programme, "ann", task["id"])
    assert (seen["completed"], seen["rewarded"], seen["detail"]) == (
        0,
        0,
        "still to do: comment.created",
    )
    # Doing it again completes the achievement again.
    programme.send(event("comment.created", "ann", local(1, 10)))
    assert programme.balance("ann")["available"] == 500


def test_refunding_a_day_of_a_streak_claws_back_the_streak_reward(programme: Programme) -> None:
    task = programme.task(streak(days=3))
    completed = programme.send(
        event("store.checkin", "ann", local(4, 9)),
        event("store.checkin", "ann", local(3, 9), order_id="pos-1"),  # a check-in by paying
        event("store.checkin", "ann", local(2, 9)),
    )
    assert (completed["balances"][0]["available"], completed["balances"][0]["pending"]) == (0, 200)

    refunded = programme.send(event("payment.refunded", "ann", local(1, 9), order_id="pos-1"))

    assert refunded["balances"][0] == {
        "user_id": "ann",
        "available": 0,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    assert progress(programme, "ann", task["id"])["rewarded"] == 0
    [lot] = task_lots(programme, "ann")
    assert lot["status"] == "REVERSED"


def test_a_paused_task_counts_nothing(programme: Programme) -> None:
    task = programme.task(streak(days=2))
    paused = programme.client.patch(
        f"/v1/loyalty/tasks/{task['id']}",
        json={"status": "PAUSED"},
        headers=programme.tenant.headers,
    )
    assert paused.status_code == 200, paused.text

    programme.send(*check_ins("ann", 3, 2))

    assert programme.balance("ann")["available"] == 0
    assert programme.tasks("ann") == []
