"""Slack mrkdwn: escaping, Markdown → mrkdwn, Slack message text → plain question, splitting within limits.

Slack's mrkdwn is not Markdown: bold is ``*b*``, links are ``<url|text>``, there
are no tables or headings, and ``&``, ``<``, ``>`` must be escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["escape", "link", "markdown_to_mrkdwn", "question_text", "split_mrkdwn", "truncate", "mentions_other_user"]

ELLIPSIS = "…"

_BOLD = re.compile(r"\*\*(?=\S)(.{1,500}?)(?<=\S)\*\*|__(?=\S)(.{1,500}?)(?<=\S)__")
_ITALIC_STAR = re.compile(r"(?<![*A-Za-z0-9])\*(?=\S)([^*\n]{1,500}?)(?<=\S)\*(?![*A-Za-z0-9])")
_STRIKE = re.compile(r"~~(?=\S)(.{1,500}?)(?<=\S)~~")
_MD_LINK = re.compile(r"\[([^\[\]\n]{1,500})\]\((https?://[^)\s]+)\)")
_DASH_URL = re.compile(
    r"^(?P<lead>(?:\s*(?:[-*+•]|\d+[.)])\s+)?(?:\[\d+\]\s*)?)(?P<title>.+?)\s+[—–-]\s+(?P<url>https?://\S+)\s*$"
)
_PAREN_URL = re.compile(
    r"(?<![^\s、,，:：（()<>|])(?P<title>[^\s、,，:：（()<>|]+)\s?[（(](?P<url>https?://[^\s）)]+)[）)]"
)
_BARE_URL = re.compile(r"(?<![<|])\bhttps?://[^\s<>|）)]+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)(?:[-*+])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_CODE = re.compile(r"`[^`\n]{1,500}`")
_PLACEHOLDER = "\x00{}\x00"


def escape(text: str) -> str:
    """Escape the three characters mrkdwn reserves (``&`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, text: str) -> str:
    """``<url|text>``; the text is escaped and may not contain ``|``."""
    label = escape(text.replace("|", "｜").strip()) or escape(url)
    return f"<{url.replace('>', '%3E').replace('|', '%7C')}|{label}>"


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> list[str]:
    """A Markdown table as bullet rows ``• 列: 値 / 列: 値`` (the header names every value)."""
    if len(rows) >= 2 and _TABLE_RULE.match(rows[1]):
        header, body = _cells(rows[0]), rows[2:]
    else:
        header, body = [], rows
    out = []
    for row in body:
        cells = _cells(row)
        pairs = [f"{h}: {v}" if h else v for h, v in zip(header or [""] * len(cells), cells, strict=False) if v]
        if pairs:
            out.append("• " + " / ".join(pairs))
    return out


def _inline(line: str) -> str:
    """Inline Markdown → mrkdwn on one already-escaped line; code spans are left alone."""
    codes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        codes.append(m.group(0))
        return _PLACEHOLDER.format(len(codes) - 1)

    line = _CODE.sub(keep, line)
    links: list[str] = []

    def hold(s: str) -> str:
        links.append(s)
        return _PLACEHOLDER.format(f"L{len(links) - 1}")

    if "http" in line:
        line = _MD_LINK.sub(lambda m: hold(f"<{m.group(2)}|{m.group(1).replace('|', '｜')}>"), line)
        m = _DASH_URL.match(line)
        if m:
            line = m.group("lead") + hold(
                f"<{m.group('url')}|{m.group('title').replace('|', '｜').strip('*').strip()}>"
            )
        line = _PAREN_URL.sub(lambda m: hold(f"<{m.group('url')}|{m.group('title')}>"), line)
        line = _BARE_URL.sub(lambda m: hold(f"<{m.group(0)}>"), line)
    bolds: list[str] = []

    def bold(m: re.Match[str]) -> str:
        bolds.append(m.group(1) or m.group(2))
        return _PLACEHOLDER.format(f"B{len(bolds) - 1}")

    line = _BOLD.sub(bold, line)
    line = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", line)
    line = _STRIKE.sub(lambda m: f"~{m.group(1)}~", line)
    for i, b in enumerate(bolds):
        line = line.replace(_PLACEHOLDER.format(f"B{i}"), f"*{b}*")
    for i, s in enumerate(links):
        line = line.replace(_PLACEHOLDER.format(f"L{i}"), s)
    for i, c in enumerate(codes):
        line = line.replace(_PLACEHOLDER.format(i), c)
    return line


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert Markdown (as answer templates write it) to Slack mrkdwn.

    ``**b**`` → ``*b*``, ``*i*`` → ``_i_``, ``[t](u)`` → ``<u|t>``, ``title — url`` and
    ``name（url）`` → ``<url|title>``, bare URLs → ``<url>``, headings → bold lines,
    list markers → ``•``, tables → one bullet row per table row. ``&<>`` are escaped.
    """
    out: list[str] = []
    lines = markdown.replace("\r\n", "\n").split("\n")
    i = 0
    in_code = False
    while i < len(lines):
        raw = lines[i]
        if raw.strip().startswith("```"):
            in_code = not in_code
            out.append("```")
            i += 1
            continue
        if in_code:
            out.append(escape(raw))
            i += 1
            continue
        if raw.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out.extend(_inline(escape(r)) for r in _table(rows))
            continue
        quote = ""
        if raw.startswith(">"):
            quote, raw = ">", raw[1:]
        heading = _HEADING.match(raw)
        if heading:
            text = heading.group(1).strip().strip("*").strip()
            out.append(f"{quote}*{_inline(escape(text))}*")
        elif item := _ITEM.match(raw):
            nested = len(item.group(1).expandtabs(4)) >= 2
            mark = "    ◦" if nested else "•"
            out.append(f"{quote}{mark} {_inline(escape(item.group(2)))}")
        else:
            out.append(quote + _inline(escape(raw)))
        i += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_SLACK_LINK = re.compile(r"<(https?://[^|>]+)(?:\|([^>]*))?>")
_SLACK_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")
_SLACK_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")


def question_text(text: str, *, bot_user_id: str | None) -> str:
    """A Slack message's text as the user meant it: bot mentions removed, links and channels as text, unescaped."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _SLACK_USER.sub(lambda m: f"@{m.group(1)}", text)
    text = _SLACK_CHANNEL.sub(lambda m: f"#{m.group(1)}", text)
    text = _SLACK_SPECIAL.sub(lambda m: f"@{m.group(1) or m.group(2) or 'group'}", text)
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t\u3000]+", " ", text).strip()


def mentions_other_user(text: str, *, bot_user_id: str | None) -> bool:
    """True when the message mentions a user and the bot is not among them (it is addressed to someone else)."""
    users = set(_SLACK_USER.findall(text))
    return bool(users) and bot_user_id not in users


def _safe_cut(text: str, limit: int) -> str:
    """``text[:limit]`` moved back so that it does not end inside ``<…>`` or an ``&…;`` entity."""
    cut = text[:limit]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp <= 5:
        cut = cut[:amp]
    return cut


def truncate(text: str, limit: int, *, marker: str = ELLIPSIS) -> str:
    """``text`` if it fits in ``limit`` characters, else cut (never inside a link) and ending with ``marker``."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(marker))
    return _safe_cut(text, room).rstrip() + marker


def _pieces(text: str, limit: int) -> Iterable[tuple[str, str]]:
    """``(separator, piece)``: paragraphs, a paragraph over ``limit`` as its lines, a line over ``limit`` in parts."""
    for para in re.split(r"\n\s*\n", text.strip()):
        if len(para) <= limit:
            yield "\n\n", para
            continue
        sep = "\n\n"
        for line in para.split("\n"):
            while len(line) > limit:
                head = _safe_cut(line, limit) or line[:limit]
                yield sep, head
                sep = "\n"
                line = line[len(head) :]
            if line:
                yield sep, line
            sep = "\n"


def split_mrkdwn(text: str, *, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters at paragraph, then line boundaries."""
    chunks: list[str] = []
    current = ""
    for sep, piece in _pieces(text, limit):
        joined = f"{current}{sep}{piece}" if current else piece
        if len(joined) <= limit:
            current = joined
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks
