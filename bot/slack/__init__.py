"""careerbot in Slack: mentions, DMs, thread follow-ups, ``/career``, App Home and feedback.

Modules (only this package imports Slack's libraries):

    config     check the SLACK_* settings before anything starts (no Slack import)
    mrkdwn     Markdown → Slack mrkdwn, escaping, splitting text within Slack's limits
    render     an `Answer` (and help, errors, the Home tab) as Slack messages and views
    store      `SlackStore`: inbox of accepted work, dedup keys, answers, feedback, rate limits (SQLite)
    feedback   a 👍/👎 rating; export of 👎 as a question set
    work       `WorkQueue`: bounded queue + workers, so acks never wait behind answers
    retries    slack_sdk's retry handlers for 429 / 5xx / connection errors, bounded (each retry counted)
    observed   the Web API client that counts calls failing after their retries (`bot.metrics`)
    stream     an LLM answer shown while it is written (Slack streaming, else a throttled placeholder)
    app        `SlackBot`: the bolt App wired to an `Advisor`
    server     a hardened threaded WSGI server for HTTP mode (``POST /slack/events``, ``GET /healthz``,
               ``GET /metrics``)
    cli        ``careerbot slack`` and ``careerbot feedback export``

Import `bot.slack.app` / `bot.slack.server` explicitly; this package itself imports nothing heavy.
"""
