"""The eval: replays question sets through the one `Advisor` and scores retrieval, abstention, citations and latency.

    bot.eval.metrics   pure metric functions (hit@k, MRR, nDCG, recall, abstention, percentiles)
    bot.eval.runner    run_eval(advisor, questions) -> the report as a dict (report.json's content)
    bot.eval.compare   --compare deltas and --fail-under gates
    bot.eval.report    report.json / report.md / report.html
    bot.eval.cli       the ``careerbot eval`` subcommand

The README section "Evaluation" documents the command, the set format and every metric.
"""
