"""A shopper's thumbs up or down on an order, once, after the order ended.

Every attempt counts against a per-shopper and a (loose) per-address budget,
so a script cannot flood the operators' pages; the database keeps one
feedback per order whatever races.
"""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.errors import (
    FeedbackExists,
    InvalidRequest,
    NotOrderOwner,
    OrderNotFinished,
    OrderNotFound,
)
from api.lifecycle.states import ENDED
from api.services.context import Context
from api.services.locks import valid_client_id
from api.services.ratelimit import FailureLimiter
from schema.models import FEEDBACK_COMMENT_MAX, RATINGS, Feedback, Order

WINDOW_S = 3600
PER_CLIENT = 10
PER_SOURCE = 300  # many shoppers share one address on a campus network


class Feedbacks:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.limiter = FailureLimiter(
            window_s=WINDOW_S,
            limits={"client": PER_CLIENT, "source": PER_SOURCE},
            what="feedback attempts",
            name="feedback",
            store=ctx.budgets,
        )

    async def give(
        self, order_id: str, client_id: str, rating: str, comment: str | None, source: str = ""
    ) -> Feedback:
        if not valid_client_id(client_id):
            raise InvalidRequest("client_id must be 8 to 64 printable characters")
        if rating not in RATINGS:
            raise InvalidRequest("rating must be up or down")
        text = (comment or "").strip()
        if len(text) > FEEDBACK_COMMENT_MAX:
            raise InvalidRequest(f"the comment must be at most {FEEDBACK_COMMENT_MAX} characters")
        now = self.ctx.clock.now()
        keys = {"client": client_id, "source": source or "unknown"}
        await self.limiter.spend(keys, now)  # every attempt is spent, accepted or not
        try:
            async with self.ctx.db.begin() as s:
                order = await s.get(Order, order_id)
                if order is None:
                    raise OrderNotFound("no such order")
                if order.client_id != client_id:
                    raise NotOrderOwner("only the shopper who placed this order can rate it")
                if order.status not in ENDED:
                    raise OrderNotFinished("rate the order once it has finished")
                found = await s.scalar(select(Feedback.id).where(Feedback.order_id == order.id))
                if found is not None:
                    raise FeedbackExists("this order already has feedback")
                feedback = Feedback(
                    order_id=order.id,
                    machine_id=order.machine_id,
                    client_id=client_id,
                    rating=rating,
                    comment=text or None,
                    created_at=now,
                )
                s.add(feedback)
        except IntegrityError as exc:  # the same order rated twice at once
            raise FeedbackExists("this order already has feedback") from exc
        return feedback

    async def mine(self, order_id: str, client_id: str) -> dict[str, object]:
        """What the order page shows this shopper: whether they may rate it (only the buyer,
        once it ended, once) and the rating they gave, with its comment, if they did."""
        if not valid_client_id(client_id):
            raise InvalidRequest("client_id must be 8 to 64 printable characters")
        async with self.ctx.db() as s:
            order = await s.get(Order, order_id)
            if order is None:
                raise OrderNotFound("no such order")
            owner = order.client_id == client_id
            found = None
            if owner:
                found = await s.scalar(select(Feedback).where(Feedback.order_id == order.id))
        given = (
            None
            if found is None
            else {"rating": found.rating, "comment": found.comment, "created_at": found.created_at}
        )
        return {
            "yours": owner,
            "may_rate": owner and found is None and order.status in ENDED,
            "feedback": given,
        }
