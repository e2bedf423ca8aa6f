"""Social mentions: read the operator's mentions on a schedule and answer each from the
customer's own history (details in a direct message, the page's words in public)."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forewarn.flows.context import Context, context_for
from forewarn.notifiers.mentions import MastodonMentions, answer_mentions
from forewarn.store import now_utc


@task(cache_policy=NO_CACHE)
def answer_new_mentions(ctx: Context, now: datetime) -> int:
    """Answer every mention since the last one answered."""
    s = ctx.settings
    if not s.mastodon_url or s.mastodon_token is None:
        get_run_logger().info("no FOREWARN_MASTODON_URL/TOKEN: no mentions to read")
        return 0
    account = MastodonMentions(s.mastodon_url, s.mastodon_token.get_secret_value(), ctx.http)
    with ctx.engine.connect() as conn:
        answered = answer_mentions(conn, account, ctx.brand, now, s.privacy_floor)
    get_run_logger().info("mentions answered=%d", answered)
    return answered


@flow(name="mentions", log_prints=False)
def mentions(now: datetime | None = None) -> int:
    """Read and answer new social mentions."""
    return answer_new_mentions(context_for(), now or now_utc())
