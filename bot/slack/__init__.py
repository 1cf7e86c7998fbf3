"""careerbot in Slack: mentions, DMs, thread follow-ups, ``/career``, App Home and feedback.

Modules (only this package imports Slack's libraries):

    config     check the SLACK_* settings before anything starts (no Slack import)
    mrkdwn     Markdown → Slack mrkdwn, escaping, splitting text within Slack's limits
    render     an `Answer` (and help, errors, the Home tab) as Slack messages and views
    feedback   the SQLite store of answers and 👍/👎 clicks; export of 👎 as a question set
    stream     an LLM answer shown while it is written (Slack streaming, else a throttled placeholder)
    dedupe     a bounded TTL set: every event and message is answered once
    ratelimit  a per-user sliding-window limit
    app        `SlackBot`: the bolt App wired to an `Advisor`
    server     a threaded WSGI server for HTTP mode (``POST /slack/events``, ``GET /healthz``)
    cli        ``careerbot slack`` and ``careerbot feedback export``

Import `bot.slack.app` / `bot.slack.server` explicitly; this package itself imports nothing heavy.
"""
