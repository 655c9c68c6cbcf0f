"""The leaderboard: result files -> validated, aggregated tables -> Markdown, HTML site, plots."""
