"""careerbot: a Japanese-first career advisor that answers from a knowledge base of articles, with citations.

    knowledge/*.md → bot.knowledge → bot.passages → bot.index (FAISS + BM25) → bot.retrieval
                   → bot.answer (backends, prompts/*.j2) → bot.pipeline.Advisor → bot.cli / Slack / eval
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
