"""Capture real replies from a running OpenAI-compatible server (llama.cpp) as fixtures for the grounding tests.

For each question, the prompt is built exactly as the ``openai`` backend builds it
and sent through the official SDK; the raw reply, its ``finish_reason`` and the
prompt (system, user, the sources' sections and headers, the boundary) are
written to a JSON file, with what `bot.answer.llm.verify` decides about it. For
each follow-up, the rewrite prompt and the raw rewrite are captured the same way.

    python tests/llm/capture_replies.py --base-url http://127.0.0.1:8089/v1 --model gemma-3-270m \\
        --out /tmp/replies.json --max-tokens 200

The tests load a curated few of these (``tests/llm/fixtures/*.json``), so each
rule is checked against output a real model wrote.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from pathlib import Path

import openai

from bot.answer import AnswerRequest
from bot.answer.llm import build_prompt, rewrite_prompt, verify
from bot.pipeline import Advisor
from bot.settings import Settings
from bot.text import detect_language

QUESTIONS = [
    "データサイエンティストの年収は？",
    "AI PMのキャリアパスは？",
    "データサイエンティストになるには何を勉強すればいい？",
    "AIエンジニアに必要なスキルは？",
    "プロダクトマネージャーの面接ではどんな質問が出る？",
    "機械学習エンジニアの年収はどのくらい？",
]
FOLLOW_UPS = [
    ("シニアだと？", ["データサイエンティストの年収は？"]),
    ("面接では何を聞かれる？", ["AI PMのキャリアパスは？"]),
    ("おすすめの本は？", ["データサイエンティストになるには何を勉強すればいい？"]),
]


def prompt_record(prompt) -> dict:
    return {
        "boundary": prompt.boundary,
        "system": prompt.system,
        "user": prompt.user,
        "sources": [
            {"n": s.n, "section_id": s.section.id, "title": s.title, "breadcrumb": s.breadcrumb, "text": s.text,
             "score": s.score}
            for s in prompt.sources
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True, help="the name recorded with each reply (llama.cpp serves one model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--question", action="append", help="ask this instead of the built-in questions (repeatable)")
    ap.add_argument("--no-rewrites", action="store_true", help="skip the follow-up rewrites")
    args = ap.parse_args()

    settings = Settings()
    advisor = Advisor(settings=settings)
    client = openai.OpenAI(base_url=args.base_url, api_key="sk-no-key-required", timeout=args.timeout, max_retries=0)
    records: list[dict] = []

    def call(system: str | None, user: str, max_tokens: int) -> tuple[str, str, dict, float]:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        t0 = time.perf_counter()
        r = client.chat.completions.create(model=args.model, messages=messages, max_tokens=max_tokens, temperature=0.2)
        ms = (time.perf_counter() - t0) * 1000
        usage = {"prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens} if r.usage else {}
        return r.choices[0].message.content or "", r.choices[0].finish_reason or "", usage, ms

    for question in args.question or QUESTIONS:
        retrieval = advisor.retriever.search(question, top_k=args.top_k)
        request = AnswerRequest(question=question, retrieval=retrieval, knowledge=advisor.knowledge,
                                aspects=advisor.retriever.aspects, careers=advisor.careers)
        prompt = build_prompt(advisor.prompts, request)
        reply, finish, usage, ms = call(prompt.system, prompt.user, args.max_tokens)
        checked = verify(reply, prompt.sources, base_url=settings.article_base_url, prompt=prompt,
                         truncated=finish == "length")
        records.append({"kind": "answer", "model": args.model, "question": question, "finish_reason": finish,
                        "reply": reply, "usage": usage, "ms": round(ms), "prompt": prompt_record(prompt),
                        "verdict": checked.rejected or ("served" if checked.citations else "no_valid_citation")})
        print(f"{question}: {finish}, {ms:.0f} ms, {records[-1]['verdict']}", flush=True)
    for question, history in [] if args.no_rewrites else FOLLOW_UPS:
        boundary = secrets.token_hex(6)
        message = rewrite_prompt(advisor.prompts, question, history, language=detect_language(question), boundary=boundary)
        reply, finish, usage, ms = call(None, message, 60)
        records.append({"kind": "rewrite", "model": args.model, "question": question, "history": history,
                        "boundary": boundary, "prompt": message, "reply": reply, "finish_reason": finish,
                        "usage": usage, "ms": round(ms)})
        print(f"rewrite {question}: {reply[:60]!r}", flush=True)
    args.out.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
